"""Carve a held-out split that never leaks a source.

    python bench/split_rows.py SRC TRAIN_OUT DEV_OUT K          # a headed TSV: the last K rows
    python bench/split_rows.py --set DIR TRAIN_OUT DEV_OUT K    # a transfer set: K sources

A TSV row is one source, so its last K rows are K whole sources (for MRPC, whose file here is
GLUE's train + dev together, the last 408 pairs play GLUE's dev). A transfer set is split with
``distill.split_by_source``: every source goes to one side with all its samples; both halves
are written with ``save_to_disk``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def split_tsv(src: str, train: str, dev: str, k: int) -> None:
    with open(src, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    with open(train, "wb") as f:
        f.writelines([header, *rows[:-k]])
    with open(dev, "wb") as f:
        f.writelines([header, *rows[-k:]])


def split_set(folder: str, train: str, dev: str, k: int, seed: int = 0) -> None:
    from distill import split_by_source
    from pipelines.transfer_set import open_set

    split = split_by_source(open_set(folder), test_size=k, seed=seed)
    split["train"].save_to_disk(train)
    split["test"].save_to_disk(dev)
    print(f"{len(split['train']):,} train rows, {len(split['test']):,} held-out rows ({k} sources)")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--set":
        split_set(args[1], args[2], args[3], int(args[4]))
    else:
        split_tsv(args[0], args[1], args[2], int(args[3]))
