"""The small values that flow between pipeline stages."""

from __future__ import annotations

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
    """One output row (DESIGN.md's row schema, before the teacher adds its logits)."""

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
