"""POS vocabulary: corpus counts of (tag, word), sampled frequency-weighted per tag.

Tang et al. draw a replacement "from the unigram distribution renormalised by POS tag"; here a
draw is one ``searchsorted`` over cumulative counts (O(log V)), never ``random.choice`` over a
list with duplicates. Vocabularies built on parts of a corpus merge by adding counts, so a Beam
combine gives the same vocabulary whatever the partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np

from augment.types import TaggedSentence


class _Compiled:
    """Flat arrays over all (tag, word) entries, tags sorted, words sorted within a tag."""

    __slots__ = ("words", "words_array", "cum", "tag_span", "word_id")

    def __init__(self, counts: Mapping[str, Mapping[str, int]]):
        words: list[str] = []
        weights: list[int] = []
        # tag -> (first entry, end entry, cumulative count before the tag, tag total)
        self.tag_span: dict[str, tuple[int, int, float, float]] = {}
        self.word_id: dict[tuple[str, str], int] = {}
        running = 0
        for tag in sorted(counts):
            entries = sorted((w, c) for w, c in counts[tag].items() if c > 0)
            if not entries:
                continue
            lo = len(words)
            total = 0
            for w, c in entries:
                self.word_id[(tag, w)] = len(words)
                words.append(w)
                weights.append(c)
                total += c
            self.tag_span[tag] = (lo, len(words), float(running), float(total))
            running += total
        self.words = words
        self.words_array = np.empty(len(words), dtype=object)  # for vectorised concatenation
        self.words_array[:] = words
        # cum[k] = total count of entries 0..k; entry k owns [cum[k-1], cum[k]).
        self.cum = np.cumsum(np.asarray(weights, dtype=np.float64))

    def lookup(self, tags: Iterable[str], tokens: Iterable[str]) -> tuple[np.ndarray, ...]:
        """Per token: tag start, tag total, entry range, and the token's own entry (-1)."""
        spans = [self.tag_span.get(t) for t in tags]
        start = np.array([s[2] if s else 0.0 for s in spans], dtype=np.float64)
        total = np.array([s[3] if s else 0.0 for s in spans], dtype=np.float64)
        lo = np.array([s[0] if s else 0 for s in spans], dtype=np.int64)
        hi = np.array([s[1] - 1 if s else 0 for s in spans], dtype=np.int64)
        own = np.array(
            [self.word_id.get((t, w), -1) for t, w in zip(tags, tokens, strict=True)],
            dtype=np.int64,
        )
        return start, total, lo, hi, own

    def draw(
        self, u: np.ndarray, start: np.ndarray, total: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """Entry ids for uniforms ``u`` (any shape broadcasting with the per-token arrays)."""
        idx = np.searchsorted(self.cum, start + u * total, side="right")
        return np.clip(idx, lo, hi)  # guards float rounding at a tag's edges


class PosVocabulary:
    """Counts of words per tag over tagged sentences."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]] | None = None):
        self._counts: dict[str, dict[str, int]] = {}
        self._compiled: _Compiled | None = None
        if counts:
            for tag, words in counts.items():
                for word, c in words.items():
                    if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                        raise ValueError(f"count of ({tag!r}, {word!r}) must be an int >= 0: {c!r}")
                    if c:
                        self._counts.setdefault(tag, {})[word] = c

    # -- building -----------------------------------------------------------------------------
    def add(self, sentence: TaggedSentence) -> PosVocabulary:
        if not isinstance(sentence, TaggedSentence):
            raise TypeError(f"sentence must be a TaggedSentence, got {type(sentence).__name__}")
        for word, tag in zip(sentence.tokens, sentence.tags, strict=True):
            per_tag = self._counts.setdefault(tag, {})
            per_tag[word] = per_tag.get(word, 0) + 1
        self._compiled = None
        return self

    def update(self, sentences: Iterable[TaggedSentence]) -> PosVocabulary:
        for s in sentences:
            self.add(s)
        return self

    @classmethod
    def from_sentences(cls, sentences: Iterable[TaggedSentence]) -> PosVocabulary:
        return cls().update(sentences)

    def merge(self, other: PosVocabulary) -> PosVocabulary:
        """Add ``other``'s counts into this vocabulary (in place) and return it."""
        if not isinstance(other, PosVocabulary):
            raise TypeError(f"other must be a PosVocabulary, got {type(other).__name__}")
        for tag, words in other._counts.items():
            per_tag = self._counts.setdefault(tag, {})
            for word, c in words.items():
                per_tag[word] = per_tag.get(word, 0) + c
        self._compiled = None
        return self

    @classmethod
    def merged(cls, vocabularies: Iterable[PosVocabulary]) -> PosVocabulary:
        out = cls()
        for v in vocabularies:
            out.merge(v)
        return out

    # -- reading ------------------------------------------------------------------------------
    @property
    def tags(self) -> list[str]:
        return sorted(self._counts)

    def count(self, tag: str, word: str) -> int:
        return self._counts.get(tag, {}).get(word, 0)

    def words(self, tag: str) -> dict[str, int]:
        return dict(self._counts.get(tag, {}))

    def __len__(self) -> int:
        """Number of distinct (tag, word) entries."""
        return sum(len(w) for w in self._counts.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PosVocabulary) and self._counts == other._counts

    def __repr__(self) -> str:
        return f"PosVocabulary({len(self._counts)} tags, {len(self)} entries)"

    @property
    def compiled(self) -> _Compiled:
        if self._compiled is None:
            self._compiled = _Compiled(self._counts)
        return self._compiled

    def sample(self, tag: str, rng: np.random.Generator, size: int | None = None):
        """Frequency-weighted word(s) of ``tag``; ``None`` when the tag is not in the vocabulary."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        c = self.compiled
        span = c.tag_span.get(tag)
        if span is None:
            return None
        lo, hi, start, total = span
        u = rng.random() if size is None else rng.random(size)
        idx = c.draw(np.asarray(u), np.float64(start), np.float64(total), lo, hi - 1)
        if size is None:
            return c.words[int(idx)]
        return [c.words[i] for i in idx.tolist()]

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, int]]:
        return {tag: dict(sorted(self._counts[tag].items())) for tag in sorted(self._counts)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PosVocabulary:
        return cls(json.loads(text))

    def __getstate__(self):
        return self._counts

    def __setstate__(self, state):
        self._counts = state
        self._compiled = None
