"""The SST-2 recipe table: which parts of the transfer-set recipe the distilled BiLSTM needs.

    python bench/recipe_sst2.py [--only NAME ...] [--lanes 2] [--table]

Every row is ``transferset build`` + ``train-student`` + ``transferset evaluate`` on SST-2 dev
with the teacher ``../shared/models/sst2-minilm``; one change at a time from a fixed baseline
(``n_iter 8``, the paper's rates, MSE on logits, GloVe 50-d trainable over the set's own
words, hidden 150, 5 epochs, patience 2). Builds share one logits cache
(``data/teacher-cache``), so a larger ``n_iter`` or another op mix only scores texts no earlier
build scored. Jobs run ``--lanes`` at a time, one
thread each (two lanes use this machine's two cores without oversubscribing them); a row whose
results exist is skipped, so the script resumes. ``--table`` prints the markdown table of what
is done: row, what changed, dev accuracy, rows in the transfer set, teacher texts scored by its
build, the epoch kept (best on dev, or for the honest ``h-`` rows best on the 2,000 held-out
train sources that ``bench/quality_sst2.sh`` carves: dev then only reports), training
seconds; then mean, min and max of the recipes run with several seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: see bench/augment.py

from bench._glue import glue_file  # noqa: E402
from bench.split_rows import split_tsv  # noqa: E402

Q = ROOT / "data" / "quality"
TEACHER = ROOT.parent / "shared" / "models" / "sst2-minilm"
# --glove-words 0: the rows before GloVe's words joined the vocabulary by default
BASE_TRAIN = ("--epochs", "5", "--patience", "2", "--glove-words", "0")
# the recommended recipe with the table's 5 epochs and patience 2 (for time)
GLOVE_TRAIN = ("--epochs", "5", "--patience", "2", "--glove-words", "100000")
# the same with train-student's own epochs and patience (10, 3)
GLOVE_TRAIN_E10 = ("--epochs", "10", "--patience", "3", "--glove-words", "100000")

# set name -> build flags
SETS = {
    "sst2-n8": ("--n-iter", "8"),
    "sst2-n8-keep-replaced": ("--n-iter", "8", "--no-drop-replaced"),
    "sst2-n12": ("--n-iter", "12"),
    "sst2-n20": ("--n-iter", "20"),
    "sst2-n8-no-mask": ("--n-iter", "8", "--p-mask", "0"),
    "sst2-n8-no-pos": ("--n-iter", "8", "--p-pos", "0"),
    "sst2-n8-no-ngram": ("--n-iter", "8", "--p-ng", "0"),
    # the honest protocol (bench/quality_sst2.sh): built from train minus the 2,000 selection
    # sources, which pick the epoch; dev only reports
    "sst2-h-n8": ("--n-iter", "8"),
    "sst2-h-n8-nbr-for-pos": ("--n-iter", "8", "--p-pos", "0", "--p-nbr", "0.1"),
    "sst2-h-n8-nbr-added": ("--n-iter", "8", "--p-nbr", "0.1"),
}
HONEST = {name for name in SETS if name.startswith("sst2-h-")}
SELECTION = Q / "sst2-selection.tsv"
MINUS_SELECTION = Q / "sst2-train-minus-selection.tsv"
# row -> (what changed, set, train-student flags); the order is the order they run in
ROWS = {
    "gold": (
        "gold labels only (CE, originals, 10 epochs)",
        "sst2-n8",
        ("--loss", "ce", "--originals-only", "--epochs", "10", "--patience", "3"),
    ),
    "base": ("baseline: n_iter 8, MSE, hidden 150, 5 epochs", "sst2-n8", BASE_TRAIN),
    "base-seed1": ("baseline, seed 1", "sst2-n8", (*BASE_TRAIN, "--seed", "1")),
    "base-seed2": ("baseline, seed 2", "sst2-n8", (*BASE_TRAIN, "--seed", "2")),
    "keep-replaced": (
        "keep all-replaced samples (--no-drop-replaced)",
        "sst2-n8-keep-replaced",
        BASE_TRAIN,
    ),
    "kl-t2": ("loss KL, T = 2", "sst2-n8", (*BASE_TRAIN, "--loss", "kl", "--temperature", "2")),
    "hidden-300": ("hidden 300", "sst2-n8", (*BASE_TRAIN, "--hidden", "300")),
    "n12": ("n_iter 12", "sst2-n12", BASE_TRAIN),
    "n20": ("n_iter 20", "sst2-n20", BASE_TRAIN),
    "n12-seed1": ("n_iter 12, seed 1", "sst2-n12", (*BASE_TRAIN, "--seed", "1")),
    "n12-seed2": ("n_iter 12, seed 2", "sst2-n12", (*BASE_TRAIN, "--seed", "2")),
    "n20-seed1": ("n_iter 20, seed 1", "sst2-n20", (*BASE_TRAIN, "--seed", "1")),
    "n20-glove-100k": (
        "n_iter 20, + GloVe's 100k most frequent words in the vocabulary",
        "sst2-n20",
        GLOVE_TRAIN,
    ),
    "n20-glove-100k-seed1": (
        "n_iter 20, + GloVe's 100k words, seed 1",
        "sst2-n20",
        (*GLOVE_TRAIN, "--seed", "1"),
    ),
    "n20-glove-100k-seed2": (
        "n_iter 20, + GloVe's 100k words, seed 2",
        "sst2-n20",
        (*GLOVE_TRAIN, "--seed", "2"),
    ),
    "n20-glove-100k-e10": (
        "n_iter 20, + GloVe's 100k words, 10 epochs, patience 3 (train-student's defaults)",
        "sst2-n20",
        GLOVE_TRAIN_E10,
    ),
    "n20-glove-100k-e10-seed1": (
        "n_iter 20, + GloVe's 100k words, 10 epochs, patience 3, seed 1",
        "sst2-n20",
        (*GLOVE_TRAIN_E10, "--seed", "1"),
    ),
    "n20-glove-100k-e10-seed2": (
        "n_iter 20, + GloVe's 100k words, 10 epochs, patience 3, seed 2",
        "sst2-n20",
        (*GLOVE_TRAIN_E10, "--seed", "2"),
    ),
    "alpha-0.5": ("alpha 0.5 (half CE on gold rows)", "sst2-n8", (*BASE_TRAIN, "--alpha", "0.5")),
    "kl-t1": ("loss KL, T = 1", "sst2-n8", (*BASE_TRAIN, "--loss", "kl", "--temperature", "1")),
    "kl-t4": ("loss KL, T = 4", "sst2-n8", (*BASE_TRAIN, "--loss", "kl", "--temperature", "4")),
    "two-channels": (
        "GloVe, two channels (static + trainable)",
        "sst2-n8",
        (*BASE_TRAIN, "--two-channels"),
    ),
    "epochs-10": (
        "10 epochs, patience 3",
        "sst2-n8",
        ("--epochs", "10", "--patience", "3", "--glove-words", "0"),
    ),
    "no-ngram": ("p_ng 0 (no n-gram sampling)", "sst2-n8-no-ngram", BASE_TRAIN),
    "no-mask": ("p_mask 0 (no masking)", "sst2-n8-no-mask", BASE_TRAIN),
    "no-pos": ("p_pos 0 (no POS replacement)", "sst2-n8-no-pos", BASE_TRAIN),
    # the GloVe neighbour swap (beyond Tang), honest protocol, GloVe's 100k words, 5 epochs
    "h-base": (
        "honest baseline: n_iter 8, + GloVe's 100k words, 5 epochs",
        "sst2-h-n8",
        GLOVE_TRAIN,
    ),
    "h-nbr-for-pos": (
        "honest, neighbour swap in place of the POS swap (p_pos 0, p_nbr 0.1, K 15)",
        "sst2-h-n8-nbr-for-pos",
        GLOVE_TRAIN,
    ),
    "h-nbr-added": (
        "honest, neighbour swap added to the three ops (p_nbr 0.1, K 15)",
        "sst2-h-n8-nbr-added",
        GLOVE_TRAIN,
    ),
    "h-base-e3": (
        "honest baseline, 3 epochs (for time: the 5-epoch row's first 3, no lr schedule)",
        "sst2-h-n8",
        (*GLOVE_TRAIN, "--epochs", "3"),
    ),
    "h-base-seed1": ("honest baseline, seed 1", "sst2-h-n8", (*GLOVE_TRAIN, "--seed", "1")),
    "h-base-seed2": ("honest baseline, seed 2", "sst2-h-n8", (*GLOVE_TRAIN, "--seed", "2")),
    "h-nbr-for-pos-seed1": (
        "honest, neighbour swap in place of the POS swap, seed 1",
        "sst2-h-n8-nbr-for-pos",
        (*GLOVE_TRAIN, "--seed", "1"),
    ),
    "h-nbr-added-seed1": (
        "honest, neighbour swap added to the three ops, seed 1",
        "sst2-h-n8-nbr-added",
        (*GLOVE_TRAIN, "--seed", "1"),
    ),
    "h-nbr-added-seed2": (
        "honest, neighbour swap added to the three ops, seed 2",
        "sst2-h-n8-nbr-added",
        (*GLOVE_TRAIN, "--seed", "2"),
    ),
    "h-maxpool": (
        "honest baseline with `--pooling max` (each feature's max over the tokens)",
        "sst2-h-n8",
        (*GLOVE_TRAIN, "--pooling", "max"),
    ),
}


def run(args: list[str], log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "transferset_cli", *args], stdout=f, stderr=f, env=env
        )
    if proc.returncode != 0:
        raise RuntimeError(f"transferset {args[0]} failed, see {log}")


def build(name: str) -> None:
    if (Q / name / "manifest.json").exists():
        return
    source = glue_file("SST-2/train.tsv")
    if name in HONEST:
        if not SELECTION.exists():  # the split bench/quality_sst2.sh carves
            split_tsv(str(source), str(MINUS_SELECTION), str(SELECTION), 2000)
        source = MINUS_SELECTION
    run(
        [
            "build",
            "--task",
            "sst2",
            "--input",
            str(source),
            "--out",
            str(Q / name),
            *SETS[name],
            "--teacher",
            str(TEACHER),
            "--teacher-cache",
            str(ROOT / "data" / "teacher-cache"),
            "--teacher-threads",
            "1",
        ],
        Q / f"build-{name}.log",
    )


def train(name: str, kd_set: str, dev: str, out: Path, flags) -> None:
    run(
        [
            "train-student",
            "--shards",
            str(Q / kd_set),
            "--task",
            "sst2",
            "--eval",
            dev,
            "--out",
            str(out),
            *flags,
        ],
        Q / "recipe" / f"train-{name}.log",
    )


def row(name: str) -> None:
    _, kd_set, flags = ROWS[name]
    out = Q / "recipe" / name
    if (out / "eval.json").exists():
        return
    build(kd_set)
    dev = str(glue_file("SST-2/dev.tsv"))
    pick = str(SELECTION) if kd_set in HONEST else dev  # what picks the epoch
    out.parent.mkdir(parents=True, exist_ok=True)
    if not (out / "metrics.json").exists():  # written last: the student is trained and saved
        train(name, kd_set, pick, out, flags)
    run(
        [
            "evaluate",
            "--model",
            str(out),
            "--task",
            "sst2",
            "--data",
            dev,
            "--threads",
            "1",
            "--out",
            str(out / "eval.json"),
        ],
        Q / "recipe" / f"eval-{name}.log",
    )


def table() -> str:
    lines = [
        "| row | what changed | dev accuracy | rows in the transfer set | teacher texts scored "
        "| best epoch (picked on) | training s |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    seeds: dict[str, list[float]] = {}
    for name, (what, kd_set, _) in ROWS.items():
        out = Q / "recipe" / name
        if not (out / "eval.json").exists():
            continue
        ev = json.loads((out / "eval.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        manifest = json.loads((Q / kd_set / "manifest.json").read_text())
        scored = (manifest.get("teacher") or {}).get("scored", 0)
        seconds = sum(h["seconds"] for h in metrics["history"])
        picked = "selection" if kd_set in HONEST else "dev"
        lines.append(
            f"| {name} | {what} | {ev['metrics']['accuracy']:.4f} | {metrics['train_rows']:,} | "
            f"{scored:,} | {metrics['best_epoch']} ({picked}) | {seconds:,.0f} |"
        )
        recipe = name.split("-seed")[0]  # seeds of one recipe: "n12", "n12-seed1", ...
        seeds.setdefault(recipe, []).append(ev["metrics"]["accuracy"])
    lines += ["", "| recipe | seeds | mean | min | max |", "|---|---:|---:|---:|---:|"]
    for recipe, accs in seeds.items():
        if len(accs) > 1:
            lines.append(
                f"| {recipe} | {len(accs)} | {sum(accs) / len(accs):.4f} | "
                f"{min(accs):.4f} | {max(accs):.4f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="rows to run (default: all, in order)")
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--table", action="store_true", help="print the table of finished rows")
    args = ap.parse_args(argv)
    if args.table:
        print(table())
        return
    from concurrent.futures import ThreadPoolExecutor

    Q.mkdir(parents=True, exist_ok=True)
    names = args.only or list(ROWS)
    # a set is built once: rows that share it wait for the lane that builds it
    locks: dict[str, object] = {}
    import threading

    for name in SETS:
        locks[name] = threading.Lock()

    def job(name: str) -> str:
        started = time.time()
        with locks[ROWS[name][1]]:
            build(ROWS[name][1])
        row(name)
        return f"{name}: done in {time.time() - started:.0f} s"

    with ThreadPoolExecutor(args.lanes) as pool:
        for result in pool.map(job, names):
            print(result, flush=True)
    print(table())


if __name__ == "__main__":
    main()
