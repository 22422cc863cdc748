"""Progress bars that stay readable in logs: redrawn often on a terminal, every 30 s elsewhere."""

from __future__ import annotations

import sys


def progress(iterable, desc: str, unit: str = "batch"):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, mininterval=0.5 if sys.stderr.isatty() else 30.0)
