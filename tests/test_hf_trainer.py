"""``DistillationTrainer`` trains a Hugging Face classifier from a transfer set as
``load_from_disk`` returns it; ``split_by_source`` never splits a source."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from conftest import build_set, head

from augment.tasks import get_task
from distill import DistillationCollator, DistillationTrainer, split_by_source
from pipelines.shards import features_for


def _tiny_bert(tokenizer, num_labels=2, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=256, num_labels=num_labels,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def _separable_set(n_sources=60, samples=3, seed=0) -> datasets.Dataset:
    """Transfer-set rows whose teacher says "good" -> positive, "bad" -> negative."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sources):
        y = s % 2
        words = ["the", "film", "is", "good" if y else "bad"]
        for i in range(-1, samples):
            w = list(words)
            rng.shuffle(w)
            rows.append({
                "id": str(s) if i < 0 else f"{s}-{i}", "source_id": str(s),
                "text_a": " ".join(w), "text_b": None, "label": y if i < 0 else -1,
                "is_original": i < 0, "ops": "" if i < 0 else "mask",
                "teacher_logits": [-2.0, 2.0] if y else [2.0, -2.0],
            })  # fmt: skip
    return datasets.Dataset.from_list(rows, features=features_for(get_task("sst2"), True))


def _args(out, **kw):
    from transformers import TrainingArguments

    base = dict(
        output_dir=str(out), per_device_train_batch_size=16, learning_rate=5e-3, num_train_epochs=6,
        logging_steps=1, save_strategy="no", report_to=[], seed=0, use_cpu=True,
        disable_tqdm=True,
    )  # fmt: skip
    return TrainingArguments(**(base | kw))


@pytest.mark.parametrize("loss,alpha", [("mse", 0.0), ("kl", 0.5)])
def test_the_trainer_learns_the_teacher_on_a_separable_set(tiny_teacher, tmp_path, loss, alpha):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    ds = _separable_set()
    model = _tiny_bert(tokenizer)
    trainer = DistillationTrainer(
        model=model, args=_args(tmp_path), train_dataset=ds, processing_class=tokenizer,
        loss=loss, alpha=alpha, temperature=2.0,
    )  # fmt: skip
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])  # the loss falls
    test = _separable_set(20, 0, seed=1)
    predicted = trainer.predict(test).predictions.argmax(-1)
    teacher = np.asarray(test["teacher_logits"]).argmax(-1)
    assert (predicted == teacher).mean() >= 0.9  # chance is 0.5


def test_the_collator_masks_missing_gold_and_keeps_logits(tiny_teacher):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    ds = _separable_set(2, 1)
    batch = DistillationCollator(tokenizer)(list(ds))
    assert batch["labels"].tolist() == [0, -100, 1, -100]
    assert batch["teacher_logits"].shape == (4, 2)
    assert batch["input_ids"].shape[0] == 4 and "text_a" not in batch
    scores = DistillationCollator(tokenizer, regression=True)._labels([2.5, float("nan")])
    assert scores[0] == 2.5 and torch.isnan(scores[1])


def test_a_built_set_trains_as_load_from_disk_returns_it(glue_dir, tiny_teacher, tmp_path):
    """The real path: a set built with a teacher, opened with datasets, no column munging;
    its Trainer evaluates on GLUE dev rows that have no teacher logits (gold loss)."""
    from transformers import AutoTokenizer

    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 40)
    build_set("sst2", src, tmp_path / "kd", n_iter=2, teacher=str(tiny_teacher))
    ds = datasets.load_from_disk(str(tmp_path / "kd"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    dev = ds.filter(lambda r: r["is_original"]).remove_columns("teacher_logits")
    trainer = DistillationTrainer(
        model=_tiny_bert(tokenizer), args=_args(tmp_path / "t", max_steps=3, num_train_epochs=1),
        train_dataset=ds, eval_dataset=dev, processing_class=tokenizer,
    )  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"])
    with pytest.raises(ValueError, match="unknown loss"):
        DistillationTrainer(model=_tiny_bert(tokenizer), args=_args(tmp_path), loss="l2")
    wide = DistillationTrainer(
        model=_tiny_bert(tokenizer, num_labels=3), args=_args(tmp_path / "w", max_steps=1),
        train_dataset=ds, processing_class=tokenizer,
    )  # fmt: skip
    with pytest.raises(ValueError, match="num_labels"):
        wide.train()


def test_split_by_source_keeps_each_source_on_one_side():
    ds = _separable_set(200, 3)
    split = split_by_source(ds, test_size=0.25, seed=3)
    train, test = split["train"], split["test"]
    assert len(train) + len(test) == len(ds)
    assert not set(train["source_id"]) & set(test["source_id"])
    assert len(set(test["source_id"])) == 50
    # a source's samples follow it: every test source has its original and all 3 samples
    assert len(test) == 50 * 4
    # the same split whatever the row order, different for another seed
    shuffled = split_by_source(ds.shuffle(seed=9), test_size=0.25, seed=3)["test"]
    assert set(shuffled["source_id"]) == set(test["source_id"])
    other = split_by_source(ds, test_size=0.25, seed=4)["test"]
    assert set(other["source_id"]) != set(test["source_id"])
    assert len(set(split_by_source(ds, test_size=7)["test"]["source_id"])) == 7
    for bad in (0, 200, 1.5, 0.0, "a"):
        with pytest.raises(ValueError, match="test_size"):
            split_by_source(ds, test_size=bad)
    # the naive row split leaks: some source has rows on both sides
    naive = ds.train_test_split(test_size=0.25, seed=3)
    assert set(naive["train"]["source_id"]) & set(naive["test"]["source_id"])


def test_a_gold_loss_batch_without_gold_rows_is_a_zero_loss_not_an_error(tiny_teacher, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    model = _tiny_bert(tokenizer)
    trainer = DistillationTrainer(
        model=model, args=_args(tmp_path), processing_class=tokenizer, loss="ce"
    )
    samples = [r for r in _separable_set(4, 2) if not r["is_original"]]
    batch = DistillationCollator(tokenizer)(samples)
    loss = trainer.compute_loss(model, batch)
    assert loss.item() == 0.0 and loss.requires_grad
    no_labels = {k: v for k, v in batch.items() if k != "labels"}
    soft = DistillationTrainer(model=model, args=_args(tmp_path / "m"), processing_class=tokenizer)
    assert soft.compute_loss(model, no_labels).item() > 0  # no label column: the soft term alone
