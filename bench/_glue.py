"""Locating the shared GLUE files for benchmarks (they are not part of the project)."""

from __future__ import annotations

import sys
from pathlib import Path

GLUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


def glue_file(rel: str) -> Path:
    path = GLUE / rel
    if not path.exists():
        sys.exit(f"benchmark skipped: {path} is absent (see ../shared/data/glue/README.md)")
    return path


def sst2_sentences(limit: int | None = None) -> list[str]:
    with open(glue_file("SST-2/train.tsv"), encoding="utf-8") as f:
        next(f)  # header
        out = [line.rstrip("\n").split("\t")[0] for line in f if line.strip()]
    return out[:limit] if limit else out
