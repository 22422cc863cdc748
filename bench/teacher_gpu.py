"""P8: the teacher stage on a GPU — bf16 token budgets against the HF pipeline, one run.

    python bench/teacher_gpu.py [--n 20000] [--device cuda] [--budgets 8192 16384 32768 65536]
    python bench/teacher_gpu.py --device cpu --n 200 --budgets 1024 2048   # a CPU smoke run

On the first N SST-2 train sentences, the same model on the same device:
  fp32 ours        pipelines.teacher.Teacher, float32, the largest budget
  bf16 ours @B     bf16 autocast, token budget B (rows x padded length), max_batch 4096
  hf_pipeline      transformers.pipeline("text-classification", batch_size=256), float32
and the largest |logit| difference of each bf16 run from the fp32 one. Under 8 minutes on one
GPU for N = 20,000 (the default). Last line:
``P8 bf16_speedup_vs_hf_pipeline=<x> best_budget=<B> max_abs_diff_bf16=<d>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: see bench/augment.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._glue import GLUE, sst2_sentences  # noqa: E402
from pipelines.teacher import Teacher, TeacherConfig  # noqa: E402

DEFAULT_TEACHER = GLUE.parents[1] / "models" / "sst2-minilm"
LABELS = ("negative", "positive")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def ours(texts, path, device, dtype, budget) -> tuple[float, np.ndarray]:
    cfg = TeacherConfig(str(path), device=device, dtype=dtype, max_tokens=budget, max_batch=4096)
    teacher = Teacher(cfg, LABELS)
    teacher.logits(texts[:256])  # warm-up: kernels, allocator
    _sync(device)
    t = time.perf_counter()
    out = teacher.logits(texts)
    _sync(device)
    return time.perf_counter() - t, out


def hf_pipeline(texts, path, device) -> tuple[float, np.ndarray]:
    from transformers import pipeline

    clf = pipeline(
        "text-classification",
        model=str(path),
        device=torch.device(device),
        batch_size=256,
        truncation=True,
        max_length=128,
        top_k=None,
        function_to_apply="none",
    )
    clf(texts[:256])
    _sync(device)
    t = time.perf_counter()
    res = clf(texts)
    _sync(device)
    dt = time.perf_counter() - t
    out = np.zeros((len(texts), 2), dtype=np.float32)
    for i, scores in enumerate(res):
        for s in scores:
            out[i, LABELS.index(s["label"])] = s["score"]
    return dt, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budgets", type=int, nargs="+", default=[8192, 16384, 32768, 65536])
    args = ap.parse_args(argv)
    if not Path(args.teacher).exists():
        sys.exit(f"benchmark skipped: no teacher at {args.teacher}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("benchmark skipped: no CUDA device here (try --device cpu for a smoke run)")
    texts = sst2_sentences(args.n)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"{len(texts)} SST-2 sentences, teacher {args.teacher}, {name}, torch {torch.__version__}"
    )
    t32, ref = ours(texts, args.teacher, args.device, "float32", max(args.budgets))
    print(f"fp32 ours @{max(args.budgets):>6}: {len(texts) / t32:10.1f} sequences/s")
    best = None
    for budget in args.budgets:
        t, got = ours(texts, args.teacher, args.device, "bfloat16", budget)
        diff = float(np.abs(got - ref).max())
        print(f"bf16 ours @{budget:>6}: {len(texts) / t:10.1f} sequences/s  max |diff| {diff:.2e}")
        if best is None or t < best[0]:
            best = (t, budget, diff)
    t_hf, l_hf = hf_pipeline(texts, args.teacher, args.device)
    print(
        f"hf_pipeline fp32:   {len(texts) / t_hf:10.1f} sequences/s  "
        f"max |diff| vs fp32 ours {np.abs(l_hf - ref).max():.2e}"
    )
    t, budget, diff = best
    print(
        f"P8 bf16_speedup_vs_hf_pipeline={t_hf / t:.2f} best_budget={budget} "
        f"max_abs_diff_bf16={diff:.3g}"
    )


if __name__ == "__main__":
    main()
