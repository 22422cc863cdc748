"""The small values that flow between pipeline stages, and how batches of them travel.

Rows travel as plain tuples laid out like ``Row`` (Beam's coder is fast on plain tuples and
very slow on NamedTuples, which it pickles one by one), and batches cross stage boundaries as
one pickled ``bytes`` value each: encoding a 20,000-row batch is then one C-level call.
"""

from __future__ import annotations

import pickle
from typing import NamedTuple


class Example(NamedTuple):
    """One source row as read."""

    source_id: str
    text_a: str
    text_b: str | None
    label: int | float  # ClassLabel index (-1 unlabelled) or float (NaN unlabelled)
    source: str = ""  # file it came from, for dead letters of later stages
    line_number: int = 0


class DeadLetter(NamedTuple):
    """A row that could not be used, and why; written to ``dead_letter/*.jsonl``."""

    source: str
    line_number: int
    raw: str
    reason: str

    def to_dict(self) -> dict:
        return self._asdict()


class Row(NamedTuple):
    """One output row (DESIGN.md's row schema); the teacher appends ``teacher_logits``."""

    id: str
    source_id: str
    text_a: str
    text_b: str | None
    label: int | float
    is_original: bool
    ops: str


def row_sort_key(row: tuple) -> tuple:
    """Natural id order: source ``9`` < ``10``; a source's original, then samples by index.

    Takes any tuple laid out like ``Row`` (a row with logits appended works too).
    """
    row_id, sid, is_original = row[0], row[1], row[5]
    source = (0, int(sid), "") if sid.isdigit() else (1, 0, sid)
    return source, -1 if is_original else int(row_id[len(sid) + 1 :])


# Field positions of a row tuple (a Row, or a plain tuple laid out like one).
ID, SOURCE_ID, TEXT_A, TEXT_B, LABEL, IS_ORIGINAL, OPS, LOGITS = range(8)


def pack(batch: list) -> bytes:
    """A batch of plain tuples as one bytes value for the trip between stages."""
    return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> list:
    return pickle.loads(data)
