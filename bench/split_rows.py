"""Split a headed TSV into train and a fixed dev part (the last K rows), header in both.

    python bench/split_rows.py SRC TRAIN_OUT DEV_OUT K

For MRPC, whose file here is GLUE's train + dev together: the last 408 pairs play GLUE's dev.
"""

from __future__ import annotations

import sys


def main(src: str, train: str, dev: str, k: int) -> None:
    with open(src, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    with open(train, "wb") as f:
        f.writelines([header, *rows[:-k]])
    with open(dev, "wb") as f:
        f.writelines([header, *rows[-k:]])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
