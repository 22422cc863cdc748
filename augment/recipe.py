"""The Tang et al. (2019) recipe: ``n_iter`` samples per source example, deduplicated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augment.config import AugmentConfig
from augment.ops import MASK, NBR, SWAP, block_width, draw_plan
from augment.seeding import source_uniforms
from augment.types import Sample, TaggedSentence
from augment.vocab import PosVocabulary

# pair_mode -> which sides sample i augments, cycling over i: (A?, B?)
_SIDES = {
    "a": ((True, False),),
    "b": ((False, True),),
    "both": ((True, True),),
    "cycle": ((True, False), (False, True), (True, True)),
}
# bit 1: a mask in the kept window, bit 2: a changed POS swap, bit 8: a changed neighbour swap,
# bit 4: a proper n-gram
_OPS = [
    "+".join(
        name for name, bit in (("mask", 1), ("pos", 2), ("nbr", 8), ("ngram", 4)) if code & bit
    )
    for code in range(16)
]

Example = tuple[str, TaggedSentence, TaggedSentence | None]  # (source_id, a, b)


class _Sides:
    """Samples of one side (A or B) of a batch of examples, drawn in one vectorised plan."""

    def __init__(
        self,
        sentences: list[TaggedSentence],
        us: list[np.ndarray],
        vocab: PosVocabulary,
        cfg: AugmentConfig,
        neighbours=None,
    ):
        plan = self.plan = draw_plan(
            sentences,
            vocab,
            us,
            p_mask=cfg.p_mask,
            p_pos=cfg.p_pos,
            p_ng=cfg.p_ng,
            ngram_sizes=cfg.ngram_sizes,
            p_nbr=cfg.p_nbr,
            neighbours=neighbours,
        )
        spaces = [sp for s in sentences for sp in s.spaces]
        self.tok_ws = [t + sp for s in sentences for t, sp in zip(s.tokens, s.spaces, strict=True)]
        self.mask_ws = [cfg.mask_token + sp for sp in spaces]
        n = plan.action.shape[0]
        rows = np.arange(n)[:, None]
        pad = np.zeros((n, 1), dtype=np.int64)

        def in_window(m: np.ndarray) -> np.ndarray:  # (n, S) True count inside each window
            c = np.concatenate([pad, np.cumsum(m, axis=1)], axis=1)
            return c[rows, plan.end] - c[rows, plan.start]

        masked = plan.action == MASK
        masked_in = in_window(masked)
        swapped_in = in_window(plan.changed & ~masked)
        width = plan.end - plan.start
        lens = np.diff(plan.offsets)
        nbr_in = in_window(plan.changed & (plan.action == NBR)) if cfg.p_nbr > 0 else 0
        code = (
            (masked_in > 0) * 1
            + (swapped_in - nbr_in > 0) * 2  # a changed POS swap
            + (width < lens) * 4
            + (nbr_in > 0) * 8  # a changed neighbour swap
        )
        # per source s, per sample i (transposed: the caller walks one source at a time)
        self.code = code.T.tolist()
        self.replaced = ((masked_in + swapped_in == width) & (lens > 0)).T.tolist()
        self.start = plan.start.T.tolist()
        self.end = plan.end.T.tolist()
        # The text pieces of every sample: the tokens with their whitespace, replaced where the
        # plan says; one list per sample index i. A sample's text is a join over its window.
        tok_ws = np.empty(plan.action.shape[1], dtype=object)
        tok_ws[:] = self.tok_ws
        pieces = np.empty(plan.action.shape, dtype=object)  # (n, sum T)
        pieces[:] = tok_ws
        rows_nz, cols_nz = np.nonzero(plan.action)
        if len(cols_nz):
            is_mask = plan.action[rows_nz, cols_nz] == MASK
            repl = np.empty(len(cols_nz), dtype=object)
            mask_ws = np.empty(len(spaces), dtype=object)
            mask_ws[:] = self.mask_ws
            repl[is_mask] = mask_ws[cols_nz[is_mask]]
            acts = plan.action[rows_nz, cols_nz]
            sp = np.empty(len(spaces), dtype=object)
            sp[:] = spaces
            for kind, table in ((SWAP, vocab.compiled.words_array if vocab else None),
                                (NBR, neighbours.words_array if neighbours else None)):  # fmt: skip
                sel = acts == kind
                if sel.any():
                    wid = plan.word[rows_nz[sel], cols_nz[sel]]
                    repl[sel] = table[wid] + sp[cols_nz[sel]]
            pieces[rows_nz, cols_nz] = repl
        self.pieces = pieces.tolist()

    def original(self, s: int) -> str:
        offsets = self.plan.offsets
        return "".join(self.tok_ws[offsets[s] : offsets[s + 1]]).strip()

    def text(self, s: int, i: int) -> str:
        return "".join(self.pieces[i][self.start[s][i] : self.end[s][i]]).rstrip()


def _check_example(source_id, a, b, config: AugmentConfig) -> None:
    if not isinstance(source_id, str):
        raise TypeError(f"source_id must be a str, got {type(source_id).__name__}")
    if not isinstance(a, TaggedSentence):
        raise TypeError(f"a must be a TaggedSentence, got {type(a).__name__}")
    if b is not None and not isinstance(b, TaggedSentence):
        raise TypeError(f"b must be a TaggedSentence or None, got {type(b).__name__}")
    if config.max_tokens is not None:
        for name, s in (("a", a), ("b", b)):
            if s is not None and len(s) > config.max_tokens:
                raise ValueError(
                    f"source {source_id!r}: sentence {name} has {len(s)} tokens, over "
                    f"max_tokens={config.max_tokens}; shorten it or raise the limit"
                )


def augment_batch(
    examples: Sequence[Example],
    *,
    vocab: PosVocabulary,
    config: AugmentConfig,
    neighbours=None,
) -> list[list[Sample]]:
    """Samples of many examples at once (same result as ``augment_example`` on each).

    Batching only amortises numpy's per-call overhead; every example still draws from its own
    stream, so a batch's composition never changes an example's samples. Examples in one batch
    must be all single sentences or all pairs.
    """
    if not isinstance(vocab, PosVocabulary):
        raise TypeError(f"vocab must be a PosVocabulary, got {type(vocab).__name__}")
    if not isinstance(config, AugmentConfig):
        raise TypeError(f"config must be an AugmentConfig, got {type(config).__name__}")
    for source_id, a, b in examples:
        _check_example(source_id, a, b, config)
    n = config.n_iter
    if not examples or n == 0:
        return [[] for _ in examples]
    pairs = examples[0][2] is not None
    if any((b is not None) != pairs for _, _, b in examples):
        raise ValueError("a batch must hold only single sentences or only pairs")
    us_a, us_b = [], []
    for source_id, a, b in examples:
        wa = block_width(len(a))
        # (n_iter, W): row i is sample i's draws, the same stream as source_rng(seed, id)
        u = source_uniforms(config.seed, source_id, (n, wa + (block_width(len(b)) if pairs else 0)))
        us_a.append(u[:, :wa])
        if pairs:
            us_b.append(u[:, wa:])
    if config.p_nbr > 0 and neighbours is None:
        raise ValueError("p_nbr > 0 needs neighbours (augment.neighbours.Neighbours)")
    side_a = _Sides([a for _, a, _ in examples], us_a, vocab, config, neighbours)
    side_b = _Sides([b for _, _, b in examples], us_b, vocab, config, neighbours) if pairs else None
    cycle = _SIDES[config.pair_mode]
    join, drop = "".join, config.drop_replaced
    out: list[list[Sample]] = []
    for s, (_, a, _b) in enumerate(examples):
        orig_a = side_a.original(s)
        samples: list[Sample] = []
        out.append(samples)
        code_a, replaced_a = side_a.code[s], side_a.replaced[s]
        if not pairs:
            if not len(a):
                continue
            # first occurrence of each text, in sample order; then drop the original's text
            first: dict[str, int] = {}
            pieces, start, end = side_a.pieces, side_a.start[s], side_a.end[s]
            for i in range(n):
                if not (drop and replaced_a[i]):
                    first.setdefault(join(pieces[i][start[i] : end[i]]).rstrip(), i)
            first.pop(orig_a, None)
            samples.extend([Sample(i, t, None, _OPS[code_a[i]]) for t, i in first.items()])
            continue
        orig_b = side_b.original(s)
        code_b, replaced_b = side_b.code[s], side_b.replaced[s]
        seen_pairs = {(orig_a, orig_b)}
        for i in range(n):
            do_a, do_b = cycle[i % len(cycle)]
            if drop and ((do_a and replaced_a[i]) or (do_b and replaced_b[i])):
                continue
            key = (side_a.text(s, i) if do_a else orig_a, side_b.text(s, i) if do_b else orig_b)
            if key in seen_pairs:
                continue
            seen_pairs.add(key)
            samples.append(
                Sample(
                    i, key[0], key[1], _OPS[(code_a[i] if do_a else 0) | (code_b[i] if do_b else 0)]
                )
            )
    return out


def augment_example(
    source_id: str,
    a: TaggedSentence,
    b: TaggedSentence | None = None,
    *,
    vocab: PosVocabulary,
    config: AugmentConfig,
    neighbours=None,
) -> list[Sample]:
    """Tang et al.'s samples of one source example (a sentence, or a pair when ``b`` is given).

    Sample ``i`` reads row ``i`` of the source's random stream (``source_rng(seed, source_id)``),
    so it is the same for any ``n_iter > i`` and any processing order. Samples equal to the
    original or to an earlier kept sample, and samples whose every token was replaced, are
    dropped; the survivors keep their index ``i``.
    """
    return augment_batch([(source_id, a, b)], vocab=vocab, config=config, neighbours=neighbours)[0]
