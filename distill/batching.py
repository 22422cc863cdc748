"""Length-bucketed batches: similar lengths together, so little padding is computed."""

from __future__ import annotations

import numpy as np


def token_budget_batches(lengths: np.ndarray, max_tokens: int, max_batch: int) -> list[np.ndarray]:
    """Indices sorted by length, cut into batches of at most ``max_batch`` rows whose padded
    size (rows x longest length) stays within ``max_tokens``; a row longer than the budget
    is a batch of its own. The teacher's and the students' inference batching."""
    order = np.argsort(lengths, kind="stable")
    batches, start, n = [], 0, len(order)
    while start < n:
        end = start + 1
        while (
            end < n
            and end - start < max_batch
            and (end - start + 1) * lengths[order[end]] <= max_tokens
        ):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def bucketed_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    bucket: int = 50,
    max_tokens: int | None = None,
) -> list[np.ndarray]:
    """Index batches. With ``rng``: shuffle, sort within chunks of ``bucket`` batches, shuffle
    the batches (training); without: sorted by length (evaluation; callers restore order),
    each batch also kept under ``max_tokens`` rows x longest length when given."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if rng is None:
        if max_tokens is not None:
            return token_budget_batches(lengths, max_tokens, batch_size)
        order = np.argsort(lengths, kind="stable")
        return [order[k : k + batch_size] for k in range(0, n, batch_size)]
    perm = rng.permutation(n)
    batches = []
    step = batch_size * bucket
    for k in range(0, n, step):
        chunk = perm[k : k + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class Ragged:
    """Variable-length rows of token ids as one flat array and offsets (Arrow's list layout):
    row ``r`` is ``flat[offsets[r]:offsets[r + 1]]``. Batches are cut and padded with numpy,
    no per-row Python objects."""

    __slots__ = ("flat", "offsets")

    def __init__(self, flat: np.ndarray, offsets: np.ndarray):
        self.flat, self.offsets = np.asarray(flat), np.asarray(offsets, dtype=np.int64)

    @classmethod
    def from_lists(cls, rows) -> Ragged:
        rows = [np.asarray(r, dtype=np.int64) for r in rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return cls(flat, offsets)

    @classmethod
    def from_arrow(cls, array) -> Ragged:
        """A pyarrow ``list<int>`` array or chunked array (a table column), without copies
        where Arrow allows."""
        import pyarrow as pa

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
        offsets = array.offsets.to_numpy()
        flat = array.values.to_numpy(zero_copy_only=False)
        return cls(flat[offsets[0] : offsets[-1]], offsets - offsets[0])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self, idx, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``(len(idx), longest)`` int64 matrix of rows ``idx`` (``pad`` after each
        row's end) and their lengths."""
        idx = np.asarray(idx)
        starts, lengths = self.offsets[idx], self.offsets[idx + 1] - self.offsets[idx]
        width = int(lengths.max()) if len(idx) else 0
        cols = np.arange(width)
        inside = cols[None, :] < lengths[:, None]
        pos = np.where(inside, starts[:, None] + cols[None, :], 0)
        out = np.where(inside, self.flat[pos] if len(self.flat) else pad, pad).astype(np.int64)
        return out, lengths

    def to_lists(self) -> list[list[int]]:
        bounds = zip(self.offsets[:-1], self.offsets[1:], strict=True)
        return [self.flat[a:b].tolist() for a, b in bounds]
