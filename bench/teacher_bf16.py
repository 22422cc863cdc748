"""bf16 autocast vs float32 for the teacher, measured on this CPU (the CUDA path's numerics).

    python bench/teacher_bf16.py [--teacher ../shared/models/sst2-minilm] [--threads 2]

On all 872 SST-2 dev sentences, the same ``Teacher`` with ``--teacher-dtype float32`` and
``bfloat16`` (torch.autocast): max and mean |logit difference|, argmax agreement, dev accuracy
of each, and sentences/s. Last line: ``BF16 max_abs_diff=<x> argmax_agreement=<y>
acc_fp32=<a> acc_bf16=<b> speed_ratio=<bf16/fp32>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: see bench/augment.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

from augment.tasks import get_task  # noqa: E402
from bench._glue import GLUE, glue_file  # noqa: E402
from pipelines.readers import read_examples  # noqa: E402
from pipelines.teacher import Teacher, TeacherConfig  # noqa: E402

DEFAULT_TEACHER = GLUE.parents[1] / "models" / "sst2-minilm"


def score(path: str, dtype: str, texts: list[str]) -> tuple[np.ndarray, float]:
    teacher = Teacher(TeacherConfig(path, dtype=dtype, device="cpu"), ("negative", "positive"))
    teacher.logits(texts[:64])  # warm-up
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        out = teacher.logits(texts)
        best = min(best, time.perf_counter() - t)
    return out, len(texts) / best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not Path(args.teacher).exists():
        sys.exit(f"benchmark skipped: no teacher at {args.teacher}")
    torch.set_num_threads(args.threads)
    dev = read_examples(str(glue_file("SST-2/dev.tsv")), get_task("sst2"))
    texts, gold = list(dev["text_a"]), np.array(list(dev["label"]))
    fp32, speed32 = score(args.teacher, "float32", texts)
    bf16, speed16 = score(args.teacher, "bfloat16", texts)
    diff = np.abs(fp32 - bf16)
    agree = float((fp32.argmax(1) == bf16.argmax(1)).mean())
    acc32 = float((fp32.argmax(1) == gold).mean())
    acc16 = float((bf16.argmax(1) == gold).mean())
    print(f"{len(texts)} SST-2 dev sentences, {torch.get_num_threads()} threads, {args.teacher}")
    print(f"float32:  {speed32:7.1f} sentences/s, accuracy {acc32:.4f}")
    print(f"bfloat16: {speed16:7.1f} sentences/s, accuracy {acc16:.4f} (autocast on the CPU)")
    print(f"|logit diff| max {diff.max():.4f}, mean {diff.mean():.4f}; argmax agree {agree:.4f}")
    print(
        f"BF16 max_abs_diff={diff.max():.4f} argmax_agreement={agree:.4f} acc_fp32={acc32:.4f} "
        f"acc_bf16={acc16:.4f} speed_ratio={speed16 / speed32:.2f}"
    )


if __name__ == "__main__":
    main()
