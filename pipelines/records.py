"""The small values that flow between pipeline stages, and how batches of them travel.

``Example`` is a source row as read, ``Row`` an output row from the augment stage on (in Arrow
tables of the same columns once written); between stages they travel as files (``exchange.py``).
"""

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
    """One output row (DESIGN.md's row schema); the teacher appends ``teacher_logits``."""

    id: str
    source_id: str
    text_a: str
    text_b: str | None
    label: int | float
    is_original: bool
    ops: str


def source_sort_key(source_id: str) -> tuple:
    """Natural order of source ids: ``9`` < ``010`` < ``10`` < ``abc``; a total order.

    Only ASCII digits count as numbers (``"²".isdigit()`` is true, ``int("²")`` fails), and
    numbers compare by value then by spelling, so ``"7"`` and ``"007"`` never tie and the order
    of rows never depends on the order they arrived in. No ``int()``: ids of any length work.
    """
    if source_id.isascii() and source_id.isdigit():
        digits = source_id.lstrip("0")
        return 0, len(digits), digits, source_id
    return 1, 0, source_id, source_id


def row_sort_key(row: Row) -> tuple:
    """Natural id order: source ``9`` < ``10``; a source's original, then samples by index."""
    return row_order_key(row.id, row.source_id, row.is_original)


def row_order_key(row_id: str, source_id: str, is_original: bool) -> tuple:
    return source_sort_key(source_id), -1 if is_original else int(row_id[len(source_id) + 1 :])


def sort_indices(ids: list[str], source_ids: list[str], is_original: list[bool]) -> list[int]:
    """Positions that put rows in ``row_sort_key`` order."""
    keys = [row_order_key(*r) for r in zip(ids, source_ids, is_original, strict=True)]
    return sorted(range(len(keys)), key=keys.__getitem__)
