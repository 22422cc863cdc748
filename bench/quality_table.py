"""The results table of bench/quality_sst2.sh and bench/quality_pairs.sh, from the evaluate
JSONs they wrote: one column per GLUE metric of the task (``augment.tasks``). A model trained
with several seeds (``NAME-s0.json``, ``NAME-s1.json``, ...) is one row: the mean, then the
lowest and highest seed (parameters and sentences/s: the first seed's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: see bench/augment.py

from augment.tasks import get_task  # noqa: E402

ROWS = [
    ("teacher", "Teacher: MiniLM-L6 fine-tuned"),
    ("bilstm-gold", "BiLSTM, gold labels only (`--loss ce --originals-only`)"),
    ("bilstm-kd-originals", "BiLSTM, KD on originals only (`--loss mse --originals-only`)"),
    ("bilstm-kd-augmented", "BiLSTM, KD with augmentation (`--loss mse`)"),
    ("best-bilstm", "BiLSTM, the recommended recipe (`bench/quality_sst2.sh`)"),
    (
        "bilstm-kd-augmented-dropout",
        "BiLSTM, KD with augmentation, `--dropout 0.3`, 6 epochs",
    ),
    ("bilstm-kd-augmented-dropout-e12", "BiLSTM, KD with augmentation, `--dropout 0.3`, 12 epochs"),
    ("bilstm-kd-augmented-dropout-e14", "BiLSTM, KD with augmentation, `--dropout 0.3`, 14 epochs"),
    (
        "bilstm-kd-n20-dropout-e8",
        "BiLSTM, KD with augmentation (`n_iter 20` set), `--dropout 0.3`, 8 epochs",
    ),
    ("bilstm-gold-maxpool", "BiLSTM, gold labels only, `--pooling max`"),
    ("bilstm-kd-maxpool", "BiLSTM, KD with augmentation, `--dropout 0.3 --pooling max`, 6 epochs"),
    (
        "bilstm-kd-n20-maxpool",
        "BiLSTM, KD with augmentation (`n_iter 20` set), `--dropout 0.3 --pooling max`, 6 epochs",
    ),
    ("transformer-3l-kd-augmented", "Transformer, 3 layers, KD with augmentation"),
]


def main(folder: str) -> None:
    q = Path(folder)
    teacher = json.loads((q / "teacher.json").read_text())
    spec = get_task(teacher["task"])
    metrics = list(spec.metrics)
    print(f"| model | {' | '.join(metrics)} | parameters | CPU sentences/s | x teacher speed |")
    print("|---|" + "---:|" * (len(metrics) + 3))
    for name, label in ROWS:
        runs = [q / f"{name}.json"] if (q / f"{name}.json").exists() else []
        runs = runs or sorted(q.glob(f"{name}-s[0-9]*.json"))
        if not runs:
            continue
        rs = [json.loads(path.read_text()) for path in runs]
        values = " | ".join(_cell([r["metrics"][m] for r in rs]) for m in metrics)
        speed = rs[0]["cpu_sentences_per_second"]
        seeds = f" ({len(rs)} seeds)" if len(rs) > 1 else ""
        print(
            f"| {label}{seeds} | {values} | {rs[0]['parameters']:,} | "
            f"{speed:,.0f} | {speed / teacher['cpu_sentences_per_second']:.1f} |"
        )


def _cell(values: list[float]) -> str:
    """One run's value, or the mean of several and their range."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    return f"{mean:.4f} ({min(values):.4f}-{max(values):.4f})"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/quality")
