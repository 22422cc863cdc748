"""The one configuration object of the Tang et al. recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from augment.flags import check_ranges, setting

PAIR_MODES = ("cycle", "a", "b", "both")
TAG_SCHEMES = ("tag", "pos")


@dataclass(frozen=True)
class AugmentConfig:
    """Tang et al. (2019) augmentation settings; defaults are the paper's SST-2 ones."""

    p_mask: float = setting(0.1, "per-token probability of the mask token")
    p_pos: float = setting(
        0.1, "per-token probability of a same-POS word drawn from the unigram distribution"
    )
    p_ng: float = setting(0.25, "per-sample probability of keeping only an n-gram")
    p_nbr: float = setting(
        0.0,
        "per-token probability of one of the word's --nbr-k GloVe nearest neighbours (beyond "
        "Tang: TinyBERT's swap; off by default, README: The recipe table)",
    )
    nbr_k: int = setting(
        15, "neighbours a --p-nbr swap draws from, by cosine of GloVe 50d", minimum=1
    )
    ngram_sizes: tuple[int, ...] = field(default=(1, 2, 3, 4, 5))  # n ~ uniform over these
    n_iter: int = setting(
        20,
        "samples drawn per source (the paper's 20 for SST-2, 10 for MNLI/QQP): more samples "
        "helped the distilled BiLSTM up to 20; README, The recipe table",
    )
    pair_mode: str = setting(
        "cycle",
        "pairs: sample i augments A, B, both by i mod 3 (cycle), or always a / b / both",
        choices=PAIR_MODES,
    )
    mask_token: str = setting("[MASK]", "the mask token")
    tag_scheme: str = setting(
        "tag", "tag: PTB tags (token.tag_); pos: universal POS (token.pos_)", choices=TAG_SCHEMES
    )
    drop_replaced: bool = setting(
        True,
        "drop a sample whose every kept token was masked or swapped (--no-drop-replaced keeps "
        "them: most samples of one- and two-word sources)",
    )
    seed: int = setting(0, "with the source id, the only input of every random draw")
    max_tokens: int | None = setting(
        512, "longer sentences (spaCy tokens) are refused (the build dead-letters them)"
    )
    max_chars: int = setting(
        20_000,
        "longer texts (characters) are dead-lettered as they are read, before tagging: a huge "
        "row costs no spaCy time and no memory downstream (spaCy itself refuses 1,000,000)",
        minimum=1,
    )

    def __post_init__(self) -> None:
        for name in ("p_mask", "p_pos", "p_ng", "p_nbr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if self.p_mask + self.p_pos + self.p_nbr > 1.0 + 1e-12:
            raise ValueError(
                "p_mask + p_pos + p_nbr must be <= 1 (one draw per token picks mask, a swap or "
                f"keep), got {self.p_mask} + {self.p_pos} + {self.p_nbr}"
            )
        sizes = self.ngram_sizes
        if isinstance(sizes, list):
            object.__setattr__(self, "ngram_sizes", tuple(sizes))
            sizes = self.ngram_sizes
        if (
            not isinstance(sizes, tuple)
            or not sizes
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)
        ):
            raise ValueError(f"ngram_sizes must be a non-empty tuple of ints >= 1, got {sizes!r}")
        for name in ("n_iter", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if self.n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {self.n_iter}")
        if self.pair_mode not in PAIR_MODES:
            raise ValueError(f"pair_mode must be one of {PAIR_MODES}, got {self.pair_mode!r}")
        if self.tag_scheme not in TAG_SCHEMES:
            raise ValueError(f"tag_scheme must be one of {TAG_SCHEMES}, got {self.tag_scheme!r}")
        if not isinstance(self.mask_token, str) or not self.mask_token.strip():
            raise ValueError(f"mask_token must be a non-empty string, got {self.mask_token!r}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be None or an int >= 1, got {self.max_tokens!r}")
        check_ranges(self)
        if self.max_chars > 1_000_000:
            raise ValueError(
                f"--max-chars must be <= 1,000,000 (spaCy's limit), got {self.max_chars}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ngram_sizes"] = list(self.ngram_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        d = dict(d)
        if "ngram_sizes" in d:
            d["ngram_sizes"] = tuple(d["ngram_sizes"])
        return cls(**d)
