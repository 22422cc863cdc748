"""Length-bucketed batches: similar lengths together, so little padding is computed."""

from __future__ import annotations

import numpy as np


def bucketed_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    bucket: int = 50,
) -> list[np.ndarray]:
    """Index batches. With ``rng``: shuffle, sort within chunks of ``bucket`` batches, shuffle
    the batches (training); without: sorted by length (evaluation; callers restore order)."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if rng is None:
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
