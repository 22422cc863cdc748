"""The results table of bench/quality_sst2.sh and bench/quality_pairs.sh, from the evaluate
JSONs they wrote: one column per GLUE metric of the task (``augment.tasks``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: see bench/augment.py

from augment.tasks import get_task  # noqa: E402

ROWS = [
    ("teacher.json", "Teacher: MiniLM-L6 fine-tuned"),
    ("bilstm-gold.json", "BiLSTM, gold labels only (`--loss ce --originals-only`)"),
    ("bilstm-kd-originals.json", "BiLSTM, KD on originals only (`--loss mse --originals-only`)"),
    ("bilstm-kd-augmented.json", "BiLSTM, KD with augmentation (`--loss mse`)"),
    ("best-bilstm.json", "BiLSTM, the recommended recipe (`bench/quality_sst2.sh`)"),
    (
        "bilstm-kd-augmented-dropout.json",
        "BiLSTM, KD with augmentation, `--dropout 0.3`, 6 epochs",
    ),
    ("transformer-3l-kd-augmented.json", "Transformer, 3 layers, KD with augmentation"),
]


def main(folder: str) -> None:
    q = Path(folder)
    teacher = json.loads((q / "teacher.json").read_text())
    spec = get_task(teacher["task"])
    metrics = list(spec.metrics)
    print(f"| model | {' | '.join(metrics)} | parameters | CPU sentences/s | x teacher speed |")
    print("|---|" + "---:|" * (len(metrics) + 3))
    for name, label in ROWS:
        if not (q / name).exists():
            continue
        r = json.loads((q / name).read_text())
        speed = r["cpu_sentences_per_second"] / teacher["cpu_sentences_per_second"]
        values = " | ".join(f"{r['metrics'][m]:.4f}" for m in metrics)
        print(
            f"| {label} | {values} | {r['parameters']:,} | "
            f"{r['cpu_sentences_per_second']:,.0f} | {speed:.1f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/quality")
