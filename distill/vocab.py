"""The student's word vocabulary, built from the transfer set with augment's tokenisation."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

PAD, UNK, MASK = "[PAD]", "[UNK]", "[MASK]"


class StudentVocab:
    """Word -> id, with ``[PAD]`` = 0, ``[UNK]`` = 1 and the mask token = 2."""

    def __init__(self, words: list[str], lowercase: bool = True, mask_token: str = MASK):
        self.lowercase = lowercase
        self.mask_token = mask_token
        self.words = [PAD, UNK, mask_token] + [w for w in words if w not in (PAD, UNK, mask_token)]
        self.index = {w: i for i, w in enumerate(self.words)}

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
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 3)]
        return cls(ranked, lowercase, mask_token)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids of ``tokens``; an empty list becomes ``[UNK]`` so every row has a length."""
        idx, unk, mask = self.index, 1, self.mask_token
        ids = [idx.get(t if t == mask or not self.lowercase else t.lower(), unk) for t in tokens]
        return ids or [unk]

    def to_json(self) -> str:
        return json.dumps(
            {"words": self.words[3:], "lowercase": self.lowercase, "mask_token": self.mask_token},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> StudentVocab:
        d = json.loads(text)
        return cls(d["words"], d["lowercase"], d["mask_token"])
