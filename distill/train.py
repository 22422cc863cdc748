"""``transferset train-student``: a student trained offline on cached teacher logits.

Teacher logits are data read from a column, never a model call in this loop. The best dev
epoch is kept, with early stopping; the resolved config, vocabulary, ``metrics.json`` and a
PNG of the curves are saved next to the model.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch

from augment.flags import check_ranges, init_flat, setting
from augment.tasks import get_task, has_gold
from distill.batching import Ragged, bucketed_batches
from distill.checkpoints import Checkpoint, hash_table
from distill.data import label_names
from distill.loop import run_epochs
from distill.losses import LOSSES, distillation_loss
from distill.metrics import main_metric, score_logits
from distill.students import (
    BiLSTMAdapter,
    TransformerAdapter,
    decode_arrow,
    encode_arrow,
    predict,
)
from distill.vocab import MASK

logger = logging.getLogger(__name__)


@dataclass
class BiLSTMSettings:
    """The BiLSTM student's own settings (Tang et al.)."""

    embeddings: str = setting(
        "glove",
        "glove (GloVe 6B 50d, trainable; the best measured) or random (trainable, --embed-dim)",
        choices=("random", "glove"),
    )
    embed_dim: int = setting(300, "width of random embeddings (GloVe's is 50)", minimum=1)
    hidden: int = setting(
        150,
        "BiLSTM hidden size per direction (300: no better on SST-2, 2.5x the training time)",
        minimum=1,
    )
    fc: int = setting(200, "width of the ReLU layer before the output", minimum=1)
    two_channels: bool = setting(
        False, "a static and a trainable copy of the embeddings (no better on SST-2)"
    )
    pooling: str | None = setting(
        None,
        "last: the final forward and backward states (Tang); max: each feature's largest value "
        "over the tokens (InferSent). Default: max for pair tasks (better on MRPC and STS-B, "
        "gold-only and distilled: README, pair tasks; 0.7x the serving speed), last for single "
        "sentences",
        choices=("last", "max"),
    )
    glove_words: int = setting(
        100_000,
        "glove only: GloVe's N most frequent words join the vocabulary as frozen rows, so a "
        "word the transfer set never shows keeps its GloVe vector instead of [UNK] (training "
        "is unchanged; 0: the set's words only); README, The recipe table",
        minimum=0,
    )
    dropout: float = setting(0.0, "dropout before the output layers", minimum=0)
    min_count: int = setting(1, "words seen fewer times are [UNK]", minimum=1)
    max_vocab: int | None = setting(None, "the most frequent words kept (default: all)", minimum=1)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.dropout >= 1:
            raise ValueError(f"--dropout must be < 1, got {self.dropout}")


@dataclass
class TransformerSettings:
    """The transformer (DistilBERT-style) student's own settings."""

    teacher: str | None = setting(None, "the checkpoint whose embeddings and layers initialise it")
    layers: int = setting(3, "layers kept, spread over the teacher's as DistilBERT's", minimum=1)
    layer_map: str | None = setting(
        None, "the teacher layers to keep, e.g. 0,2,4 (overrides --layers)"
    )
    max_length: int = setting(128, "tokens per text (pair)", minimum=1)
    allow_pickle: bool = setting(
        False, "accept a pickle .bin --teacher checkpoint (refused by default: it can run code)"
    )

    def __post_init__(self) -> None:
        check_ranges(self)


_KINDS = {"bilstm": BiLSTMSettings, "transformer": TransformerSettings}


@dataclass(init=False)
class TrainConfig:
    """A ``train-student`` run: the training settings every student shares, and each kind's
    own (``bilstm``, ``transformer``). Kind settings can be given flat, as the flags are named
    (``TrainConfig(task="sst2", hidden=300)``), and read flat (``cfg.hidden``)."""

    task: str
    student: str = setting(
        "bilstm", "bilstm (Tang et al.) or transformer", choices=("bilstm", "transformer")
    )
    loss: str = setting(
        "mse",
        "mse on logits (Tang; the SST-2 recipe table: KL with T 1, 2 or 4 no better), kl "
        "(Hinton, DistilBERT) or ce (gold labels only)",
        choices=("mse", "kl", "ce"),
    )
    temperature: float = setting(2.0, "kl only; the loss is scaled by T^2", above=0)
    alpha: float = setting(
        0.0, "weight of the gold-label term (Tang's best: 0, soft targets)", minimum=0
    )
    originals_only: bool = setting(False, "train on the source rows only (no augmented samples)")
    epochs: int = setting(
        10,
        "epochs at most; the best dev epoch is kept, so a longer run can only find a better "
        "one; README, The recipe table",
        minimum=1,
    )
    patience: int = setting(3, "stop after this many epochs without a better dev score", minimum=1)
    optimizer: str | None = setting(
        None, "default: adadelta (bilstm, Tang), adam (transformer)", choices=("adadelta", "adam")
    )
    lr: float | None = setting(None, "default: 1.0 for adadelta, 5e-5 for adam", above=0)
    rho: float = setting(0.95, "adadelta's rho", above=0)
    batch_size: int | None = setting(
        None, "default: 50 (Tang) for bilstm, 32 for transformer", minimum=1
    )
    seed: int = setting(0, "seed of initialisation and batch order")
    max_steps: int | None = setting(
        None, "optimiser steps per epoch at most (quick runs)", minimum=1
    )
    bilstm: BiLSTMSettings = field(default_factory=BiLSTMSettings)
    transformer: TransformerSettings = field(default_factory=TransformerSettings)

    def __init__(self, task: str, **kwargs):
        groups = {kind: {n: n for n in _names(cls)} for kind, cls in _KINDS.items()}
        init_flat(self, {"task": task, **kwargs}, groups)
        check_ranges(self)
        if self.rho >= 1 or self.alpha > 1:
            raise ValueError(f"--rho must be < 1 and --alpha <= 1, got {self.rho}, {self.alpha}")

    def __getattr__(self, name: str):
        for kind, cls in _KINDS.items():
            if name in _names(cls):
                return getattr(self.__dict__[kind], name)
        raise AttributeError(f"TrainConfig has no setting {name!r}")

    def resolved(self) -> TrainConfig:
        c = replace(self)
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
        b = c.bilstm
        if b.glove_words < 0:
            raise ValueError(f"glove_words must be >= 0, got {b.glove_words}")
        c.bilstm = replace(
            b,
            embed_dim=50 if b.embeddings == "glove" else b.embed_dim,
            # GloVe's words mean nothing to random embeddings
            glove_words=b.glove_words if b.embeddings == "glove" else 0,
            pooling=b.pooling or ("max" if get_task(c.task).is_pair else "last"),
        )
        if c.student == "transformer" and not c.teacher:
            raise ValueError("a transformer student needs --teacher (its initialisation)")
        return c


@functools.cache
def _names(cls) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def is_pairs(ds) -> bool:
    return len(ds) > 0 and ds[0]["text_b"] is not None


def text_batches(ds, rows: int = 10_000):
    """The texts (A, then B of pairs) of ``ds``, ``rows`` at a time."""
    arrow, pairs = ds.with_format("arrow"), is_pairs(ds)
    for start in range(0, len(ds), rows):
        table = arrow[start : start + rows]
        yield table.column("text_a").to_pylist()
        if pairs:
            yield table.column("text_b").to_pylist()


def _make_student(cfg: TrainConfig, ds, names, mask_token: str):
    num_labels = 1 if names is None else len(names)
    if cfg.student == "transformer":
        from distill.models import transformer_student

        model, tokenizer, mapping = transformer_student(
            cfg.teacher, cfg.layers, layer_map=cfg.layer_map, allow_pickle=cfg.allow_pickle
        )
        logger.info("transformer student: teacher layers %s", mapping)
        return TransformerAdapter(model, tokenizer, cfg.max_length)
    from distill.glove import add_glove_words, glove_vectors
    from distill.models import BiLSTMConfig, BiLSTMStudent
    from distill.vocab import StudentVocab, WordIds, count_words

    counts = count_words(WordIds(mask_token), text_batches(ds))
    vocab = StudentVocab.from_counts(
        counts, min_count=cfg.min_count, max_size=cfg.max_vocab, mask_token=mask_token
    )
    extra = []
    if cfg.glove_words:
        own = len(vocab)
        vocab, extra = add_glove_words(vocab, cfg.glove_words)
        logger.info("vocabulary: %d words from the set + %d from GloVe", own, len(extra))
    model_cfg = BiLSTMConfig(
        vocab_size=len(vocab),
        num_labels=num_labels,
        embed_dim=cfg.embed_dim,
        hidden=cfg.hidden,
        fc=cfg.fc,
        two_channels=cfg.two_channels,
        pairs=is_pairs(ds),
        pooling=cfg.pooling,
        dropout=cfg.dropout,
        frozen_words=len(extra),  # not the set's words: frozen, no optimiser state
    )
    vectors = (
        glove_vectors(vocab.words, cfg.embed_dim, cfg.seed) if cfg.embeddings == "glove" else None
    )
    return BiLSTMAdapter(BiLSTMStudent(model_cfg, vectors), vocab)


def encode_rows(adapter, ds, path: str, rows: int = 10_000):
    """``ds``'s texts as token id columns beside its labels and teacher logits, written by
    ``datasets.map`` to the Arrow file ``path`` (memory-mapped after, ``rows`` at a time)."""
    import uuid

    import pyarrow as pa

    keep = [c for c in ("label", "teacher_logits") if c in ds.column_names]
    pairs = is_pairs(ds)

    def encode(table):
        b = table.column("text_b").to_pylist() if pairs else None
        cols = encode_arrow(adapter, table.column("text_a").to_pylist(), b)
        return pa.table(cols | {c: table.column(c) for c in keep})

    return ds.with_format("arrow").map(
        encode,
        batched=True,
        batch_size=rows,
        remove_columns=ds.column_names,
        cache_file_name=path,
        new_fingerprint=uuid.uuid4().hex,  # never reuse: the encoder is not hashed
        load_from_cache_file=False,
        desc="encoding",
    )


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


def train_student(cfg: TrainConfig, train_ds, eval_ds, out: str, *, mask_token=None) -> dict:
    """Train on ``train_ds`` (a transfer set), pick the best epoch on ``eval_ds``, save.

    Memory does not grow with the transfer set beyond a few numbers per row (lengths, labels,
    the batch order): the vocabulary is counted ``text_batches`` at a time, token ids are
    written once to an Arrow file in ``out`` and each batch is read from it memory-mapped.
    ``mask_token``: the one the set was built with (its manifest's), kept as one word.
    """
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    names = label_names(train_ds)
    if label_names(eval_ds) != names:
        raise ValueError(f"eval labels {label_names(eval_ds)} differ from training labels {names}")
    if cfg.loss != "ce" and "teacher_logits" not in train_ds.column_names:
        raise ValueError(f"loss {cfg.loss!r} needs teacher logits; the transfer set has none")
    if cfg.originals_only and "is_original" in train_ds.column_names:
        originals = train_ds.with_format("arrow")[:]["is_original"].to_numpy(zero_copy_only=False)
        if not originals.any():
            raise ValueError("no rows left to train on (no originals?)")
        train_ds = train_ds.select(np.flatnonzero(originals))
    adapter = _make_student(cfg, train_ds, names, mask_token or MASK)
    work = os.path.join(out, ".encoded")
    os.makedirs(work, exist_ok=True)
    try:
        encoded = encode_rows(adapter, train_ds, os.path.join(work, "train.arrow"))
        table = encoded.with_format("arrow")
        lengths = _lengths(table[:])
        labels = table[:]["label"].to_numpy(zero_copy_only=False)
        rows = np.arange(len(lengths))
        if cfg.loss == "ce":  # gold labels only: rows without one can't teach
            rows = np.flatnonzero(has_gold(labels))
            if len(rows) == 0:
                raise ValueError("loss 'ce' needs rows with gold labels; the transfer set has none")
        run_id = _run_fingerprint(cfg, table[:], rows, eval_ds)
        resume = Checkpoint(os.path.join(out, CHECKPOINT_DIR), run_id)
        history = _fit(cfg, adapter, table, lengths, rows, eval_ds, rng, resume)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best_epoch = max(history, key=lambda h: main_metric(cfg.task, h["dev"]))
    meta = {"task": cfg.task, "label_names": names, "config": asdict(cfg)}
    os.makedirs(out, exist_ok=True)
    adapter.save(out, meta)
    metrics = {
        "task": cfg.task,
        "best_epoch": best_epoch["epoch"],
        "dev": best_epoch["dev"],
        "parameters": adapter.num_parameters(),
        "train_rows": int(len(rows)),
        "history": history,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    with open(os.path.join(out, "config.resolved.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=2)
    _plot(history, cfg.task, os.path.join(out, "curves.png"))
    resume.remove()  # the run is complete: the same command trains anew
    return metrics


def _lengths(table) -> np.ndarray:
    """Tokens per row (A + B for a siamese BiLSTM), from the list offsets: no ids copied."""
    import pyarrow.compute as pc

    cols = [c for c in ("ids_a", "ids_b", "input_ids") if c in table.column_names]
    return sum(pc.list_value_length(table.column(c)).to_numpy().astype(np.int64) for c in cols)


CHECKPOINT_DIR = ".checkpoint"  # inside --out: the last finished epoch of a run in progress


def _run_fingerprint(cfg: TrainConfig, encoded, rows, eval_ds) -> str:
    """What makes two runs the same run: the resolved config, every byte the training reads
    (token ids, labels, teacher logits of the encoded set; the rows trained on) and the
    selection data. Hashing is ~1 GB/s: seconds at 100x SST-2, once per run."""
    import hashlib

    h = hashlib.blake2b(json.dumps(asdict(cfg), sort_keys=True).encode(), digest_size=32)
    hash_table(h, encoded)
    h.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    evaluation = {c: list(eval_ds[c]) for c in ("text_a", "text_b", "label")}
    h.update(json.dumps(evaluation, default=str).encode())
    return h.hexdigest()


def _fit(
    cfg: TrainConfig, adapter, table, lengths, rows, eval_ds, rng, resume: Checkpoint
) -> list[dict]:
    """The epochs; leaves the best dev epoch's weights in ``adapter.model``."""
    eval_a = list(eval_ds["text_a"])
    eval_b = list(eval_ds["text_b"]) if eval_ds["text_b"][0] is not None else None
    eval_labels = list(eval_ds["label"])
    optim = _optimizer(cfg, adapter.model)
    history, best, best_state, stale = [], None, None, 0
    state = resume.load()
    if state is not None:
        adapter.model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        history, best, stale = state["history"], state["best"], state["stale"]
        best_state = state["best_state"]
        logger.info("resuming after epoch %d (from %s)", len(history), resume.path)
    box = {"best": best, "best_state": best_state, "stale": stale}

    def batches(_epoch: int):
        adapter.model.train()
        out = bucketed_batches(lengths[rows], cfg.batch_size, rng)
        return out[: cfg.max_steps] if cfg.max_steps else out

    def step(idx) -> float:
        batch = table[rows[idx].tolist()]  # the rows, read from the memory-mapped file
        label = torch.from_numpy(batch["label"].to_numpy(zero_copy_only=False))
        teacher = None
        if "teacher_logits" in batch.column_names:
            soft = Ragged.from_arrow(batch["teacher_logits"])
            teacher = torch.from_numpy(soft.flat.reshape(len(idx), -1).astype(np.float32))
        loss = distillation_loss(
            adapter.forward(decode_arrow(batch), np.arange(len(idx))),
            teacher,
            label,
            loss=cfg.loss,
            alpha=cfg.alpha,
            temperature=cfg.temperature,
        )
        optim.zero_grad()
        loss.backward()
        optim.step()
        return loss.item()

    def after(record: dict) -> bool:
        history.append(record)
        logger.info(
            "epoch %d: loss %.4f, dev %s", record["epoch"], record["train_loss"], record["dev"]
        )
        current = main_metric(cfg.task, record["dev"])
        if box["best"] is None or current > box["best"]:
            box.update(best=current, stale=0, best_state=copy.deepcopy(adapter.model.state_dict()))
        else:
            box["stale"] += 1
        resume.save(
            {
                "model": adapter.model.state_dict(),
                "optimizer": optim.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": rng.bit_generator.state,
                "history": history,
                **box,
            }
        )
        if box["stale"] >= cfg.patience:
            logger.info("no better dev score for %d epochs: stopping", box["stale"])
            return False
        return True

    def evaluate() -> dict:
        return score_logits(cfg.task, predict(adapter, eval_a, eval_b), eval_labels)

    if stale < cfg.patience:
        run_epochs(cfg.student, len(history) + 1, cfg.epochs, batches, step, evaluate, after)
    best_state = box["best_state"]
    adapter.model.load_state_dict(best_state)
    return history
