"""The teacher: load a local checkpoint safely, check its labels, score texts in token budgets.

Nothing here is Beam: ``AttachTeacherLogits`` (in ``teacher_stage.py``) wraps it. Logits are raw
float32 (no temperature), reordered to the task's label order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from augment.flags import check_ranges, setting
from distill.batching import token_budget_batches
from distill.checkpoints import label_order, load_classifier, load_tokenizer, weights_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherConfig:
    path: str  # local transformers checkpoint folder
    max_length: int = setting(
        128, "tokens per text (pair); longer inputs are truncated and counted", minimum=1
    )
    max_tokens: int = setting(
        2048,
        "token budget per forward pass (rows x padded length): the CPU sweet spot measured by "
        "bench/teacher.py; raise it a lot on a GPU",
        minimum=1,
    )
    max_batch: int = setting(64, "rows per forward pass at most", minimum=1)
    dtype: str = setting(
        "auto",
        "auto: float32 on CPU, bfloat16 autocast on CUDA (bench/teacher_bf16.py: bf16 on a CPU "
        "with bf16 units is 1.8x faster, logits within 0.03)",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    device: str = setting("auto", "auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...")
    threads: int | None = setting(
        None, "torch intra-op threads per worker (default: torch's)", minimum=1
    )
    label_map: tuple[tuple[str, str], ...] = field(default=())  # (task label, teacher label)
    allow_pickle: bool = False  # allow a pickle .bin checkpoint (unsafe: runs code on load)

    def __post_init__(self) -> None:
        check_ranges(self, prefix="teacher_")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ValueError(
                f"--teacher-device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
            )


def weights_sha256(path: str, allow_pickle: bool = False) -> str:
    """sha256 of the weights (of every shard, in order, for a sharded checkpoint)."""
    main = weights_file(path, allow_pickle)
    files = [main]
    if main.endswith(".index.json"):
        import json

        with open(main) as f:
            files = [
                os.path.join(path, n) for n in sorted(set(json.load(f)["weight_map"].values()))
            ]
    h = hashlib.sha256()
    for name in files:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def resolve_device_dtype(config: TeacherConfig):
    """``auto`` made concrete: (torch.device, dtype name)."""
    import torch

    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    dtype = config.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    return device, dtype


class Teacher:
    """A loaded teacher; one per worker process (shared between its threads)."""

    def __init__(self, config: TeacherConfig, task_labels: tuple[str, ...] | None):
        import torch

        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device, dtype = resolve_device_dtype(config)
        self.dtype = dtype
        self.autocast = None if dtype == "float32" else getattr(torch, dtype)
        self.tokenizer = load_tokenizer(config.path, role="teacher")
        self.model = (
            load_classifier(config.path, allow_pickle=config.allow_pickle, role="teacher")
            .to(self.device)
            .eval()
        )
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.id2label = id2label
        self.perm = label_order(id2label, task_labels, config.label_map)
        self.num_labels = len(self.perm)
        self.raw_width = len(id2label)  # outputs of the model (a label map may use fewer)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.forward_passes = 0
        self.rows = 0
        self.truncated = 0
        self.seconds = 0.0
        self._torch = torch

    def encode(self, texts_a: list[str], texts_b: list[str] | None) -> tuple[list, list, int]:
        """Token ids (and type ids) per row, truncated to ``max_length``; and how many were."""
        tok, limit = self.tokenizer, self.config.max_length
        enc = tok(texts_a, texts_b, truncation=False, padding=False, verbose=False)
        ids, types = enc["input_ids"], enc.get("token_type_ids")
        long = [i for i, x in enumerate(ids) if len(x) > limit]
        if long:  # rare: re-encode only those, with the tokenizer's own truncation
            again = tok(
                [texts_a[i] for i in long],
                [texts_b[i] for i in long] if texts_b is not None else None,
                truncation=True,
                max_length=limit,
                padding=False,
            )
            for k, i in enumerate(long):
                ids[i] = again["input_ids"][k]
                if types is not None:
                    types[i] = again["token_type_ids"][k]
        return ids, types, len(long)

    def logits(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """``(n, num_labels)`` float32 logits in the task's label order."""
        return self.raw_logits(texts_a, texts_b)[:, self.perm]

    def raw_logits(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """``(n, num_labels)`` float32 logits in the teacher's own output order."""
        torch = self._torch
        started = time.perf_counter()
        n = len(texts_a)
        out = np.empty((n, self.raw_width), dtype=np.float32)
        if n == 0:
            return out
        ids, types, truncated = self.encode(texts_a, texts_b)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        cfg = self.config
        with torch.inference_mode():
            for batch in token_budget_batches(lengths, cfg.max_tokens, cfg.max_batch):
                width = int(lengths[batch].max())
                input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                type_ids = np.zeros((len(batch), width), dtype=np.int64) if types else None
                for r, i in enumerate(batch.tolist()):
                    k = len(ids[i])
                    input_ids[r, :k] = ids[i]
                    mask[r, :k] = 1
                    if type_ids is not None:
                        type_ids[r, :k] = types[i]
                inputs = {
                    "input_ids": torch.from_numpy(input_ids).to(self.device),
                    "attention_mask": torch.from_numpy(mask).to(self.device),
                }
                if type_ids is not None:
                    inputs["token_type_ids"] = torch.from_numpy(type_ids).to(self.device)
                if self.autocast is not None:
                    with torch.autocast(self.device.type, dtype=self.autocast):
                        logits = self.model(**inputs).logits
                else:
                    logits = self.model(**inputs).logits
                out[batch] = logits.float().cpu().numpy()
                self.forward_passes += 1
        self.rows += n
        self.truncated += truncated
        self.seconds += time.perf_counter() - started
        return out
