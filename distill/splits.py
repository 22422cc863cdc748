"""``split_by_source``: a train/test split of a transfer set that never leaks.

``Dataset.train_test_split`` splits rows: a source lands in test while its augmented samples
(the same sentence with a word masked or swapped) stay in train, so the test score measures
memory of near-copies. Here every source goes to one side with all its samples.
"""

from __future__ import annotations

import numpy as np

from augment.seeding import stable_hash64


def split_by_source(ds, test_size: float | int = 0.1, seed: int = 0):
    """``DatasetDict(train=..., test=...)`` with every ``source_id`` on one side only.

    ``test_size``: a share of the sources (0 < x < 1) or a count of them. The test sources are
    the ``k`` with the smallest seeded hash of their id, so the split does not depend on row
    or shard order. Rows keep their order on each side.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc

    column = ds.data.column("source_id")
    if ds._indices is not None:  # a selected or filtered view: its rows, in its order
        column = column.take(ds._indices.column(0))
    sources = pc.unique(column).to_pylist()
    n = len(sources)
    if isinstance(test_size, bool) or not isinstance(test_size, int | float):
        raise ValueError(f"test_size must be a share in (0, 1) or a count, got {test_size!r}")
    k = round(test_size * n) if isinstance(test_size, float) else test_size
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size as a share must be in (0, 1), got {test_size}")
    if not 0 < k < n:
        raise ValueError(
            f"test_size {test_size!r} gives {k} of {n} sources to test: need 1..{n - 1}"
        )
    ranked = sorted(sources, key=lambda s: (stable_hash64(f"{seed}\x00{s}"), s))
    test = pc.is_in(column, value_set=pa.array(ranked[:k], type=column.type))
    test = np.asarray(test.to_numpy(zero_copy_only=False), dtype=bool)
    return datasets.DatasetDict(
        train=ds.select(np.flatnonzero(~test)), test=ds.select(np.flatnonzero(test))
    )
