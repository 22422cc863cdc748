"""``DistillationTrainer``: a transfer set trains any ``AutoModelForSequenceClassification``
under Hugging Face's ``Trainer``, with the project's losses (``distill.losses``).

    ds = datasets.load_from_disk("data/sst2-kd")
    trainer = DistillationTrainer(model=model, args=TrainingArguments("out"), train_dataset=ds,
                                  processing_class=tokenizer, loss="kl", temperature=2.0)
    trainer.train()

No column munging: the collator tokenises ``text_a`` / ``text_b`` itself (``text_b`` all
``None`` for single-sentence tasks), carries ``teacher_logits`` past ``Trainer``'s column
pruning, and turns "no gold label" (-1, or NaN for regression) into -100, the value Hugging
Face losses ignore, so the gold term of an alpha mix covers the originals alone.
"""

from __future__ import annotations

import math

import torch
from transformers import Trainer

from augment.tasks import has_gold
from distill.losses import LOSSES, distillation_loss

NO_GOLD = -100  # what Hugging Face losses ignore
COLUMNS = ("text_a", "text_b", "label", "teacher_logits")


class DistillationCollator:
    """Rows of a transfer set (dicts) -> a padded batch: the tokenizer's tensors, ``labels``
    (``NO_GOLD`` where a row has no gold label) and ``teacher_logits`` when the rows have them."""

    def __init__(self, tokenizer, max_length: int = 128, regression: bool | None = None):
        self.tokenizer, self.max_length, self.regression = tokenizer, max_length, regression

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        texts_a = [r["text_a"] for r in rows]
        texts_b = [r.get("text_b") for r in rows]
        pairs = any(b is not None for b in texts_b)
        if pairs and any(b is None for b in texts_b):
            raise ValueError("a batch mixes sentence pairs and single sentences")
        batch = dict(
            self.tokenizer(
                texts_a,
                texts_b if pairs else None,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
        )
        if "label" in rows[0]:
            batch["labels"] = self._labels([r["label"] for r in rows])
        if rows[0].get("teacher_logits") is not None:
            batch["teacher_logits"] = torch.tensor([r["teacher_logits"] for r in rows])
        return batch

    def _labels(self, labels: list) -> torch.Tensor:
        regression = self.regression
        if regression is None:
            regression = any(isinstance(y, float) for y in labels)
        if regression:  # NaN stays NaN: distill.losses masks it, and -100 is a real score
            return torch.tensor([float(y) for y in labels], dtype=torch.float32)
        return torch.tensor([NO_GOLD if y is None or y < 0 else int(y) for y in labels])


class DistillationTrainer(Trainer):
    """``Trainer`` whose loss is ``distill.losses.distillation_loss`` against ``teacher_logits``:
    ``loss`` ``"mse"`` (Tang et al.), ``"kl"`` (with T^2) or ``"ce"`` (gold only);
    ``alpha * gold + (1 - alpha) * soft``, the gold term over rows with a gold label. Rows
    without ``teacher_logits`` (a GLUE dev set for ``evaluate``) are scored on gold alone."""

    loss_is_scaled_for_ga = False  # the loss is a per-batch mean

    def __init__(
        self,
        *args,
        loss: str = "mse",
        alpha: float = 0.0,
        temperature: float = 2.0,
        max_length: int = 128,
        **kwargs,
    ):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; one of {sorted(LOSSES)}")
        if not 0.0 <= alpha <= 1.0 or not temperature > 0 or math.isnan(temperature):
            raise ValueError(
                f"alpha must be in [0, 1] and temperature > 0, got {alpha}, {temperature}"
            )
        tokenizer = kwargs.get("processing_class")
        if kwargs.get("data_collator") is None:
            if tokenizer is None:
                raise ValueError(
                    "DistillationTrainer needs processing_class=tokenizer (or a data_collator)"
                )
            kwargs["data_collator"] = DistillationCollator(tokenizer, max_length)
        super().__init__(*args, **kwargs)
        self.loss_name, self.alpha, self.temperature = loss, alpha, temperature

    # the transfer set's columns are the collator's input: Trainer must not prune them
    def _remove_unused_columns(self, dataset, description=None):
        return dataset

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        return data_collator

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        teacher = inputs.pop("teacher_logits", None)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        logits = outputs.logits
        if labels is None:  # rows without a label column: none has gold
            labels = torch.full((len(logits),), NO_GOLD)
        if teacher is not None and teacher.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"the teacher has {teacher.shape[-1]} logits, the model {logits.shape[-1]} "
                "outputs: build the model with num_labels of the transfer set's task"
            )
        name = self.loss_name if teacher is not None else "ce"
        if name == "ce" and not bool(has_gold(labels).any()):
            loss = logits.sum() * 0.0  # a batch of samples only: nothing to learn from gold
        else:
            loss = distillation_loss(
                logits, teacher, labels, loss=name, alpha=self.alpha, temperature=self.temperature
            )
        return (loss, outputs) if return_outputs else loss
