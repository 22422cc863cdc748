"""Plain, picklable values that cross module boundaries (never spaCy ``Doc`` objects)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class TaggedSentence:
    """A tokenised sentence with one tag per token.

    ``spaces[i]`` is the whitespace that followed ``tokens[i]`` in the source text, so
    ``text`` rebuilds the sentence exactly as spaCy saw it (minus leading whitespace).
    """

    tokens: tuple[str, ...]
    spaces: tuple[str, ...]
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("tokens", "spaces", "tags"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise TypeError(
                    f"TaggedSentence.{name} must be a tuple, got {type(value).__name__}"
                )
        if not (len(self.tokens) == len(self.spaces) == len(self.tags)):
            raise ValueError(
                "TaggedSentence needs one space and one tag per token: got "
                f"{len(self.tokens)} tokens, {len(self.spaces)} spaces, {len(self.tags)} tags"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def text(self) -> str:
        return "".join(t + s for t, s in zip(self.tokens, self.spaces, strict=True))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> TaggedSentence:
        """Hand-built sentence from ``(word, tag)`` pairs, words joined by single spaces."""
        pairs = list(pairs)
        tokens = tuple(w for w, _ in pairs)
        tags = tuple(t for _, t in pairs)
        spaces = tuple(" " if i < len(pairs) - 1 else "" for i in range(len(pairs)))
        return cls(tokens, spaces, tags)

    @classmethod
    def from_string(cls, tagged: str) -> TaggedSentence:
        """``"I/PRP have/VBP a/DT cat/NN"`` -> sentence; handy in tests and examples."""
        pairs = []
        for item in tagged.split():
            word, sep, tag = item.rpartition("/")
            if not sep or not word:
                raise ValueError(f"expected word/TAG, got {item!r} in {tagged!r}")
            pairs.append((word, tag))
        return cls.from_pairs(pairs)


class Sample(NamedTuple):
    """One augmented sample of a source example.

    ``index`` is the sample index ``i`` in ``0..n_iter-1`` (its id is ``{source_id}-{i}``);
    ``ops`` names the ops that changed the kept text, e.g. ``"mask+pos+ngram"``.
    """

    index: int
    text_a: str
    text_b: str | None
    ops: str
