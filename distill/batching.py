"""Length-bucketed batches: similar lengths together, so little padding is computed."""

from __future__ import annotations

import numpy as np


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
        order = np.argsort(lengths, kind="stable")
        if max_tokens is None:
            return [order[k : k + batch_size] for k in range(0, n, batch_size)]
        batches, start = [], 0
        for end in range(1, n + 1):
            full = end - start == batch_size
            if end == n or full or (end - start + 1) * lengths[order[end]] > max_tokens:
                batches.append(order[start:end])
                start = end
        return batches
    perm = rng.permutation(n)
    batches = []
    step = batch_size * bucket
    for k in range(0, n, step):
        chunk = perm[k : k + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches
