"""The results table of bench/quality_sst2.sh, from the evaluate JSONs it wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = [
    ("teacher.json", "Teacher: MiniLM-L6 fine-tuned (`sst2-minilm`)"),
    ("bilstm-gold.json", "BiLSTM, gold labels only (`--loss ce --originals-only`)"),
    ("bilstm-kd-originals.json", "BiLSTM, KD on originals only (`--loss mse --originals-only`)"),
    ("bilstm-kd-augmented.json", "BiLSTM, KD with augmentation (`--loss mse`)"),
    ("transformer-3l-kd-augmented.json", "Transformer, 3 layers, KD with augmentation"),
]


def main(folder: str) -> None:
    q = Path(folder)
    teacher = json.loads((q / "teacher.json").read_text())
    print("| model | dev accuracy | parameters | CPU sentences/s | x teacher speed |")
    print("|---|---:|---:|---:|---:|")
    for name, label in ROWS:
        if not (q / name).exists():
            continue
        r = json.loads((q / name).read_text())
        speed = r["cpu_sentences_per_second"] / teacher["cpu_sentences_per_second"]
        print(
            f"| {label} | {r['metrics']['accuracy']:.4f} | {r['parameters']:,} | "
            f"{r['cpu_sentences_per_second']:,.0f} | {speed:.1f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/quality")
