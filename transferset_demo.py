"""``transferset demo``: the whole path on the SST-2 sample shipped in the package, offline.

Fine-tune a teacher from the packaged MiniLM, build a transfer set with its logits, train the
BiLSTM on gold labels only and with distillation, evaluate everything on the sample's dev rows,
and write ``report.md`` with plots. Glue only: every step is a call into the packages.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def _data_dir() -> Path:
    import pipelines

    return Path(pipelines.__file__).resolve().parent / "demo_data"


def _step(n: int, total: int, what: str) -> float:
    print(f"\n[{n}/{total}] {what}", flush=True)
    return time.time()


def run_demo(out: str = "data/demo", quick: bool = False, seed: int = 0) -> list[dict]:
    from augment.tasks import get_task
    from pipelines.readers import read_examples

    spec = get_task("sst2")
    data = _data_dir()
    train_file, dev_file = str(data / "sst2_train_2000.tsv"), str(data / "sst2_dev_500.tsv")
    n_train, n_dev = (200, 100) if quick else (2000, 500)
    os.makedirs(out, exist_ok=True)
    started = time.time()
    train = read_examples(train_file, spec, limit=n_train)
    dev = read_examples(dev_file, spec, limit=n_dev)
    print(
        f"transferset demo: SST-2 sample, {len(train)} train and {len(dev)} dev rows "
        f"-> {os.path.abspath(out)}{' (quick)' if quick else ''}"
    )
    t = _step(1, 5, "fine-tune a teacher from the packaged MiniLM")
    teacher = _teacher(out, train, dev, spec.label_names, quick, seed)
    _done(t)
    t = _step(2, 5, "build the transfer set (augment + teacher logits)")
    shards, mask_token = _transfer_set(out, train_file, n_train, teacher, quick, seed)
    _done(t)
    t = _step(3, 5, "train BiLSTM students: gold labels only, then distilled")
    students = _students(out, shards, dev, mask_token, quick, seed)
    _done(t)
    t = _step(4, 5, "evaluate on the dev rows (accuracy, CPU sentences/s)")
    rows = _evaluate({"teacher (MiniLM, fine-tuned)": teacher, **students}, dev)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    _done(t)
    _step(5, 5, "write the report")
    _report(out, shards, rows, f"Sample: {len(train)} SST-2 train rows, {len(dev)} dev rows"
            f"{' (quick)' if quick else ''}", started)  # fmt: skip
    return rows


def _done(t: float) -> None:
    print(f"    done in {time.time() - t:.0f} s")


def _teacher(out: str, train, dev, label_names, quick: bool, seed: int) -> str:
    from distill.finetune import FinetuneConfig, finetune_teacher

    teacher = os.path.join(out, "teacher")
    config = FinetuneConfig(
        task="sst2",
        epochs=1 if quick else 2,
        lr=1e-4,
        batch_size=32,
        max_length=64,
        max_steps=8 if quick else None,
        seed=seed,
    )
    finetune_teacher(config, train, dev, label_names, teacher)
    return teacher


def _transfer_set(out: str, train_file: str, n_train: int, teacher: str, quick: bool, seed: int):
    from pipelines import BuildOptions, build_transfer_set
    from pipelines.build import summary

    shards = os.path.join(out, "transfer_set")
    built = build_transfer_set(
        BuildOptions(
            task="sst2",
            input=train_file,
            out=shards,
            limit=n_train,
            n_iter=3 if quick else 10,
            teacher=teacher,
            seed=seed,
            overwrite=True,
        )
    )
    print(summary(built.manifest))
    return shards, built.manifest.augment["mask_token"]


def _students(out: str, shards: str, dev, mask_token: str, quick: bool, seed: int) -> dict:
    from distill.train import TrainConfig, train_student
    from pipelines.transfer_set import open_set

    kd_set = open_set(shards)
    epochs = 1 if quick else 6
    configs = {
        "BiLSTM, gold labels only": TrainConfig(
            task="sst2", loss="ce", originals_only=True, epochs=epochs * 2, embeddings="glove",
            seed=seed,
        ),
        "BiLSTM, distilled (augmented transfer set)": TrainConfig(
            task="sst2", loss="mse", epochs=epochs, embeddings="glove", seed=seed
        ),
    }  # fmt: skip
    dirs = {}
    for k, (name, cfg) in enumerate(configs.items()):
        dirs[name] = os.path.join(out, f"student-{k}")
        train_student(cfg, kd_set, dev, dirs[name], mask_token=mask_token)
    return dirs


def _evaluate(models: dict[str, str], dev) -> list[dict]:
    from distill.evaluate import evaluate

    rows = []
    for name, path in models.items():
        r = evaluate(path, "sst2", dev)
        rows.append(
            {
                "model": name,
                "parameters": r["parameters"],
                "dev_accuracy": r["metrics"]["accuracy"],
                "cpu_sentences_per_second": r["cpu_sentences_per_second"],
            }
        )
    return rows


def _report(out: str, shards: str, rows: list[dict], sample: str, started: float) -> None:
    from pipelines.report import write_report

    report = write_report(shards, out)
    table = ["| model | parameters | dev accuracy | CPU sentences/s |", "|---|---:|---:|---:|"]
    table += [
        f"| {r['model']} | {r['parameters']:,} | {r['dev_accuracy']:.3f} | "
        f"{r['cpu_sentences_per_second']:,.0f} |"
        for r in rows
    ]
    with open(report) as f:
        body = f.read()
    with open(report, "w") as f:
        f.write(
            "# transferset demo\n\n" + "\n".join(table) + "\n\n"
            f"{sample}; total {time.time() - started:.0f} s.\n\n"
            + body.replace("# Transfer set report", "## Transfer set report", 1)
        )
    print("\n" + "\n".join(table))
    print(f"\nreport: {os.path.abspath(report)} ({time.time() - started:.0f} s in all)")
