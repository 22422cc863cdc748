"""P5: how much cheaper than its teacher is the student people ship, and does training scale?

    python bench/student.py [--student DIR | --set DIR] [--threads 2] [--skip-memory]

Speed: SST-2 dev (872 sentences) from raw text, tokenisation included, the same thread count for
every path: the teacher ``../shared/models/sst2-minilm`` (torch fp32), the BiLSTM (torch fp32),
the BiLSTM with dynamic int8 LSTM/linear layers (torch), and its ONNX exports (fp32 and int8)
run by ONNX Runtime. Throughput: callers hand over batches of 1,024 texts (the dev set is one),
warm, median of several passes. Latency: 1,000 calls with one sentence each, p50 and p99.
The BiLSTM: ``--student DIR``, or trained here with the default recipe from ``--set DIR``
(default: a transfer set built from the first ``--limit`` SST-2 train rows with the teacher,
``--n-iter 8``, its logits cache kept in ``data/teacher-cache``).

Memory (unless ``--skip-memory``): ``train-student`` on a transfer set (the first
``--memory-limit`` SST-2 train rows, ``--n-iter 8``) and on one 4x larger with distinct texts (4
copies, a different first word each), 1 epoch of at most 300 steps, peak RSS of each process.
Those sets get their logits from a tiny random teacher (what the logits say does not change
what training holds), so that building them takes minutes.

Last lines: ``MEM train_student_rss_ratio_4x=<4x/1x>`` (goal <= 1.5) and
``P5 bilstm_speedup=.. best_speedup=.. best=.. quantized_acc_drop=.. latency_p50_ms=..``
(goals: best_speedup >= 50, quantized_acc_drop <= 0.5 points).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: see bench/augment.py

from bench._glue import glue_file  # noqa: E402

TEACHER = ROOT.parent / "shared" / "models" / "sst2-minilm"
WORK = ROOT / "data" / "bench-student"


def cli(*args: str, time_it: bool = False) -> float:
    """Run ``transferset ARGS`` in its own process; its peak RSS in MB when ``time_it``."""
    cmd = [sys.executable, "-m", "transferset_cli", *args]
    if time_it:
        cmd = ["/usr/bin/time", "-f", "%M", *cmd]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"transferset {args[0]} failed:\n{proc.stderr[-3000:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024 if time_it else 0.0


def train(kd_set: Path, out: Path, *flags: str, time_it: bool = False) -> float:
    """``train-student`` on ``kd_set`` scored on SST-2 dev; peak RSS (MB) when ``time_it``."""
    dev = str(glue_file("SST-2/dev.tsv"))
    args = ("train-student", "--shards", str(kd_set), "--task", "sst2", "--eval", dev)
    return cli(*args, "--out", str(out), *flags, time_it=time_it)


def build_with_tiny_teacher(data: Path, kd_set: Path, n_iter: int) -> None:
    """A transfer set of ``data`` with logits from the tiny random teacher (fast; made once)."""
    tiny = WORK / "tiny-teacher"
    if not (tiny / "config.json").exists():
        make_tiny_teacher(tiny)
    cli(
        "build",
        "--task",
        "sst2",
        "--input",
        str(data),
        "--out",
        str(kd_set),
        "--n-iter",
        str(n_iter),
        "--teacher",
        str(tiny),
        "--teacher-cache",
        "none",
        "--teacher-max-batch",
        "512",
        "--teacher-max-tokens",
        "16384",
        "--overwrite",
    )


def student_dir(args) -> Path:
    if args.student:
        return Path(args.student)
    out = WORK / "bilstm"
    if (out / "student.json").exists():
        return out
    kd_set = Path(args.set) if args.set else WORK / "set"
    if not (kd_set / "manifest.json").exists():
        print(f"building a transfer set from {args.limit:,} SST-2 train rows ...", flush=True)
        cli(
            "build",
            "--task",
            "sst2",
            "--input",
            str(glue_file("SST-2/train.tsv")),
            "--limit",
            str(args.limit),
            "--n-iter",
            "8",
            "--teacher",
            str(TEACHER),
            "--teacher-cache",
            str(ROOT / "data" / "teacher-cache"),
            "--out",
            str(kd_set),
            "--overwrite",
        )
    print("training the BiLSTM (default recipe) ...", flush=True)
    train(kd_set, out, "--epochs", str(args.epochs))
    return out


def measure(name: str, student, texts, labels, latency_calls: int) -> dict:
    import numpy as np

    first = student.predict(texts[:1024])  # warm: allocator, tokenizer cache
    acc = float(np.mean(np.array(first.labels) == np.array(labels[:1024])))
    passes, times = 0, []
    started = time.perf_counter()
    while passes < 3 or (time.perf_counter() - started < 3.0 and passes < 30):
        t = time.perf_counter()
        for k in range(0, len(texts), 1024):
            student.predict(texts[k : k + 1024])
        times.append(time.perf_counter() - t)
        passes += 1
    throughput = len(texts) / float(np.median(times))
    lat = []
    for k in range(latency_calls):
        t = time.perf_counter()
        student.predict([texts[k % len(texts)]])
        lat.append((time.perf_counter() - t) * 1000)
    p50, p99 = np.percentile(lat, [50, 99])
    row = {"name": name, "acc": acc, "sps": throughput, "p50": p50, "p99": p99}
    print(
        f"{name:<18} acc {acc:.4f}  {throughput:10,.0f} sentences/s  "
        f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms",
        flush=True,
    )
    return row


def speed(args) -> dict:
    import torch

    from augment.tasks import get_task
    from distill import Student
    from distill.export import export_model
    from pipelines.readers import read_examples

    torch.set_num_threads(args.threads)
    dev = read_examples(str(glue_file("SST-2/dev.tsv")), get_task("sst2"))
    texts = list(dev["text_a"])
    labels = [["negative", "positive"][y] for y in dev["label"]]
    student = student_dir(args)
    for name, quantize in (("onnx", False), ("onnx-int8", True)):
        export_model(str(student), str(WORK / name), quantize=quantize, overwrite=True)
    paths = {
        "teacher": (str(TEACHER), False),
        "bilstm": (str(student), False),
        "bilstm-int8": (str(student), True),
        "onnx": (str(WORK / "onnx"), False),
        "onnx-int8": (str(WORK / "onnx-int8"), False),
    }
    print(f"SST-2 dev, {len(texts)} sentences, {args.threads} threads, student {student}")
    rows = {}
    for name, (path, quantize) in paths.items():
        loaded = Student.load(path, threads=args.threads, quantize=quantize)
        calls = args.latency_calls if name != "teacher" else min(args.latency_calls, 300)
        rows[name] = measure(name, loaded, texts, labels, calls)
    return rows


def memory(args) -> float:
    import shutil

    from bench.scale import replicate

    src = glue_file("SST-2/train.tsv")
    rss = {}
    for copies in (1, 4):
        data, kd_set = WORK / f"mem-x{copies}.tsv", WORK / f"mem-set-x{copies}"
        sources = replicate(src, data, copies, args.memory_limit)
        build_with_tiny_teacher(data, kd_set, 8)
        rss[copies] = train(
            kd_set,
            WORK / f"mem-student-x{copies}",
            "--epochs",
            "1",
            "--max-steps",
            "300",
            time_it=True,
        )
        import datasets

        rows = len(datasets.load_from_disk(str(kd_set)))
        print(
            f"train-student {copies}x: {sources:,} sources, {rows:,} rows: "
            f"peak RSS {rss[copies]:,.0f} MB",
            flush=True,
        )
        shutil.rmtree(kd_set)
        data.unlink()
    return rss[4] / rss[1]


def make_tiny_teacher(path: Path) -> None:
    """One 64-wide layer over the packaged MiniLM's tokenizer, random weights: fast logits."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from distill.finetune import default_base

    tokenizer = AutoTokenizer.from_pretrained(default_base())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", help="a trained BiLSTM folder (skips building and training)")
    ap.add_argument("--set", help="a transfer set to train the BiLSTM on")
    ap.add_argument("--limit", type=int, default=20000, help="SST-2 train rows for --set")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latency-calls", type=int, default=1000)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true", help="the memory part only")
    ap.add_argument(
        "--memory-limit", type=int, default=20000, help="SST-2 rows per copy (default: 20,000)"
    )
    args = ap.parse_args(argv)
    if not TEACHER.exists():
        sys.exit(f"benchmark skipped: {TEACHER} is absent")
    WORK.mkdir(parents=True, exist_ok=True)
    rows = None if args.skip_speed else speed(args)
    if not args.skip_memory:
        print(f"MEM train_student_rss_ratio_4x={memory(args):.3f}")
    if rows is None:
        return
    teacher = rows.pop("teacher")
    best = max(rows.values(), key=lambda r: r["sps"])
    int8 = max((r for r in rows.values() if "int8" in r["name"]), key=lambda r: r["sps"])
    print(
        f"P5 bilstm_speedup={rows['bilstm']['sps'] / teacher['sps']:.1f} "
        f"best_speedup={best['sps'] / teacher['sps']:.1f} best={best['name']} "
        f"quantized_acc_drop={(rows['bilstm']['acc'] - int8['acc']) * 100:.2f} "
        f"latency_p50_ms={best['p50']:.3f}"
    )


if __name__ == "__main__":
    main()
