"""The student's word vocabulary, built from the transfer set with augment's tokenisation, and
the fast path from raw text to its ids (spaCy's tokenizer, then its token hashes)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import numpy as np

PAD, UNK, MASK = "[PAD]", "[UNK]", "[MASK]"
SPECIALS = 3  # [PAD], [UNK] and the mask token are ids 0, 1, 2; vocab.json's words start here


class StudentVocab:
    """Word -> id, with ``[PAD]`` = 0, ``[UNK]`` = 1 and the mask token = 2."""

    def __init__(self, words: list[str], lowercase: bool = True, mask_token: str = MASK):
        self.lowercase = lowercase
        self.mask_token = mask_token
        self.words = [PAD, UNK, mask_token] + [w for w in words if w not in (PAD, UNK, mask_token)]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_counts(
        cls,
        counts: Counter,
        *,
        min_count: int = 1,
        max_size: int | None = None,
        lowercase: bool = True,
        mask_token: str = MASK,
    ) -> StudentVocab:
        """Most frequent first, ties by spelling; ``counts`` maps already-normalised words."""
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 3)]
        return cls(ranked, lowercase, mask_token)

    @classmethod
    def build(
        cls,
        token_lists: Iterable[list[str]],
        *,
        min_count: int = 1,
        max_size: int | None = None,
        lowercase: bool = True,
        mask_token: str = MASK,
    ) -> StudentVocab:
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update(t if t == mask_token or not lowercase else t.lower() for t in tokens)
        return cls.from_counts(
            counts,
            min_count=min_count,
            max_size=max_size,
            lowercase=lowercase,
            mask_token=mask_token,
        )

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids of ``tokens``; an empty list becomes ``[UNK]`` so every row has a length."""
        idx, unk, mask = self.index, 1, self.mask_token
        ids = [idx.get(t if t == mask or not self.lowercase else t.lower(), unk) for t in tokens]
        return ids or [unk]

    def to_json(self) -> str:
        return json.dumps(
            {
                "words": self.words[SPECIALS:],
                "lowercase": self.lowercase,
                "mask_token": self.mask_token,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> StudentVocab:
        d = json.loads(text)
        return cls(d["words"], d["lowercase"], d["mask_token"])


class WordIds:
    """Raw texts -> the student's ids, through the hashes spaCy's tokenizer already computed
    (``doc.to_array``): no Python string per token. The same tokens as
    ``augment.word_tokenizer`` (mask token kept whole), normalised as ``StudentVocab.encode``
    normalises them (tested equal), so serving sees exactly what training saw."""

    def __init__(self, mask_token: str = MASK, lowercase: bool = True):
        import spacy
        from spacy.symbols import ORTH

        self.mask_token, self.lowercase = mask_token, lowercase
        self.nlp = spacy.blank("en")
        self.nlp.tokenizer.add_special_case(mask_token, [{ORTH: mask_token}])
        self._padded = f" {mask_token} "
        # the store's ids, not spacy.strings.hash_string: a few words ("root", "prep", ...)
        # are spaCy symbols with small fixed ids
        self._hash = self.nlp.vocab.strings.add
        self._mask_hash = np.uint64(self._hash(mask_token))
        self._keys = self._ids = None

    @classmethod
    def for_vocab(cls, vocab: StudentVocab) -> WordIds:
        enc = cls(vocab.mask_token, vocab.lowercase)
        keys = np.array([enc._hash(w) for w in vocab.words], dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        enc._keys, enc._ids = keys[order], order.astype(np.int64)
        return enc

    def keys(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every token's key (its hash, lowercased unless it is the mask token) as one flat
        uint64 array, and the token count of each text."""
        from spacy.attrs import IS_SPACE, LOWER, ORTH

        mask, padded = self.mask_token, self._padded
        texts = (t.replace(mask, padded) if mask in t else t for t in texts)
        arrays, counts = [], []
        for doc in self.nlp.tokenizer.pipe(texts, batch_size=1000):
            a = doc.to_array([ORTH, LOWER, IS_SPACE])  # (tokens, 3) uint64
            if len(a) and a[:, 2].any():
                a = a[a[:, 2] == 0]
            arrays.append(a)
            counts.append(len(a))
        if not arrays or not sum(counts):
            return np.zeros(0, dtype=np.uint64), np.asarray(counts, dtype=np.int64)
        a = np.concatenate(arrays)
        keys = np.where(a[:, 0] == self._mask_hash, a[:, 0], a[:, 1]) if self.lowercase else a[:, 0]
        return keys, np.asarray(counts, dtype=np.int64)

    def word(self, key) -> str:
        """The spelling of a key (the tokenizer's string store holds every one it produced)."""
        return self.nlp.vocab.strings[int(key)]

    def __call__(self, texts: Iterable[str]):
        """A ``Ragged`` of ids, one row per text; an empty text is one ``[UNK]``."""
        from distill.batching import Ragged

        if self._keys is None:
            raise ValueError("WordIds without a vocabulary: use WordIds.for_vocab(vocab)")
        keys, counts = self.keys(texts)
        pos = np.minimum(np.searchsorted(self._keys, keys), max(len(self._keys) - 1, 0))
        ids = np.where(self._keys[pos] == keys, self._ids[pos], 1) if len(keys) else keys
        empty = counts == 0
        if empty.any():  # splice one [UNK] into each empty row
            ids = np.insert(ids.astype(np.int64), np.cumsum(counts)[empty], 1)
            counts = np.where(empty, 1, counts)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Ragged(ids.astype(np.int64), offsets)


def count_words(encoder: WordIds, text_batches: Iterable[list[str]]) -> Counter:
    """Word counts over batches of texts, one batch in memory at a time (the vocabulary of a
    transfer set that does not fit in memory)."""
    counts: dict[int, int] = {}
    for texts in text_batches:
        keys, _ = encoder.keys(texts)
        uniq, n = np.unique(keys, return_counts=True)
        for k, c in zip(uniq.tolist(), n.tolist(), strict=True):
            counts[k] = counts.get(k, 0) + c
    return Counter({encoder.word(k): c for k, c in counts.items()})
