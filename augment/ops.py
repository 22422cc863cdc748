"""Tang et al.'s three ops, driven by explicit uniforms so that every draw is reproducible.

All ops share one core: ``draw_plan`` turns blocks of uniforms into per-token actions
(keep / mask / swap), swap words and an n-gram window, vectorised over many samples of many
sentences. The uniforms of sample ``i`` are row ``i`` of a ``(n, block_width(len(sentence)))``
array laid out as ``[token draws (T) | swap-word draws (T) | n-gram?, n, start]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augment.types import TaggedSentence
from augment.vocab import PosVocabulary

KEEP, MASK, SWAP, NBR = 0, 1, 2, 3  # NBR: an embedding neighbour (augment.neighbours)


def block_width(n_tokens: int) -> int:
    """Uniforms one sample of an ``n_tokens`` sentence consumes."""
    return 2 * n_tokens + 3


@dataclass(frozen=True)
class Plan:
    """The random decisions for ``n`` samples of each of ``S`` sentences, tokens side by side.

    Token columns are the sentences' tokens concatenated: sentence ``s`` owns columns
    ``offsets[s]:offsets[s + 1]``; windows are in those global column numbers.
    """

    offsets: np.ndarray  # (S + 1,) int64
    action: np.ndarray  # (n, sum T) int8: KEEP, MASK, SWAP (the tag in the vocab) or NBR
    word: np.ndarray  # (n, sum T) int64: the swap word's vocabulary entry, or an NBR's
    # candidate id in the Neighbours (-1 where neither)
    changed: np.ndarray  # (n, sum T) bool: the token's text differs from the original
    ngram: np.ndarray  # (n, S) bool: the n-gram op was drawn
    start: np.ndarray  # (n, S) int64: kept window [start, end), global columns
    end: np.ndarray  # (n, S) int64


def draw_plan(
    sentences: list[TaggedSentence],
    vocab: PosVocabulary | None,
    us: list[np.ndarray],
    *,
    p_mask: float,
    p_pos: float,
    p_ng: float,
    ngram_sizes: tuple[int, ...],
    p_nbr: float = 0.0,
    neighbours=None,
) -> Plan:
    """Vectorised over a batch of sentences: one numpy op per step for the whole batch.

    ``us[s]`` holds sentence ``s``'s uniforms, shape ``(n, block_width(len(sentences[s])))``.
    A token's one draw ``x`` picks mask (``x < p_mask``), else a POS swap (``< p_mask +
    p_pos``), else a neighbour swap (``< p_mask + p_pos + p_nbr``), else keep: the ops are
    exclusive, and with ``p_nbr = 0`` every draw is what it was before the neighbour op.
    """
    lens = np.array([len(s) for s in sentences], dtype=np.int64)  # (S,)
    widths = 2 * lens + 3
    for s, u in enumerate(us):
        if u.ndim != 2 or u.shape[1] != widths[s] or u.shape[0] != us[0].shape[0]:
            raise ValueError(f"us[{s}] must have shape (n, {widths[s]}), got {u.shape}")
    n = us[0].shape[0]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    base = np.concatenate([[0], np.cumsum(widths)[:-1]])  # first column of each block in U
    total_tok = int(offsets[-1])
    U = np.concatenate(us, axis=1) if len(us) > 1 else us[0]  # (n, sum W)
    tok_col = np.repeat(base - offsets[:-1], lens) + np.arange(total_tok)  # (sum T,)
    x = U[:, tok_col]  # (n, sum T) one draw per token: mask, else swap, else keep
    action = np.zeros((n, total_tok), dtype=np.int8)
    if p_nbr > 0:
        action[x < p_mask + p_pos + p_nbr] = NBR
    action[x < p_mask + p_pos] = SWAP
    action[x < p_mask] = MASK  # mask and swap are exclusive by construction
    word = np.full((n, total_tok), -1, dtype=np.int64)
    changed = action == MASK  # swaps are added below where the word differs
    comp = vocab.compiled if vocab is not None else None
    if total_tok and comp is not None and comp.words:
        lens_per_tok = np.repeat(lens, lens)
        tags = [t for s in sentences for t in s.tags]
        tokens = [t for s in sentences for t in s.tokens]
        start, total, lo, hi, own = comp.lookup(tags, tokens)
        swap = (action == SWAP) & (total > 0)  # a tag absent from the vocabulary keeps its word
        action[(action == SWAP) & ~swap] = KEEP
        rows, cols = np.nonzero(swap)  # only ~p_pos of the tokens need a word
        if len(cols):
            swap_col = tok_col[cols] + lens_per_tok[cols]
            drawn = comp.draw(U[rows, swap_col], start[cols], total[cols], lo[cols], hi[cols])
            word[rows, cols] = drawn
            changed[rows, cols] = drawn != own[cols]
    else:
        action[action == SWAP] = KEEP
    if p_nbr > 0:
        _neighbour_swaps(sentences, neighbours, U, tok_col, lens, action, word, changed)
    ng_col = base + 2 * lens  # (S,)
    sizes = np.asarray(ngram_sizes, dtype=np.int64)
    ngram = U[:, ng_col] < p_ng  # (n, S)
    size_i = np.minimum((U[:, ng_col + 1] * len(sizes)).astype(np.int64), len(sizes) - 1)
    size = sizes[size_i]  # (n, S)
    n_starts = np.maximum(lens - size + 1, 1)  # every valid start (Tang's code drops the last)
    first = np.minimum((U[:, ng_col + 2] * n_starts).astype(np.int64), n_starts - 1)
    short = ngram & (size < lens)  # a sentence not longer than n stays whole
    win_start = offsets[:-1] + np.where(short, first, 0)
    win_end = np.where(short, win_start + size, offsets[1:])
    return Plan(offsets, action, word, changed, ngram, win_start, win_end)


def _neighbour_swaps(sentences, neighbours, U, tok_col, lens, action, word, changed) -> None:
    """Fill in the NBR actions: a token without neighbours keeps its word; the others draw
    one of their ``k`` with the token's swap-word uniform (a POS swap's, unused here)."""
    is_nbr = action == NBR
    if neighbours is None or not is_nbr.any():
        action[is_nbr] = KEEP
        return
    tokens = [t for s in sentences for t in s.tokens]
    row = neighbours.lookup(tokens)  # (sum T,)
    action[is_nbr & (row < 0)[None, :]] = KEEP
    rows, cols = np.nonzero(action == NBR)
    if len(cols):
        swap_col = tok_col[cols] + np.repeat(lens, lens)[cols]
        drawn = neighbours.draw(U[rows, swap_col], row[cols])
        word[rows, cols] = drawn
        texts = neighbours.words_array[drawn]
        changed[rows, cols] = [w != tokens[c] for w, c in zip(texts, cols.tolist(), strict=True)]


def render_tokens(
    sentence: TaggedSentence,
    plan: Plan,
    i: int,
    vocab: PosVocabulary | None,
    mask_token: str,
    neighbours=None,
) -> list[str]:
    """Token texts of sample ``i`` of a one-sentence plan, over the whole sentence."""
    words = vocab.compiled.words if vocab is not None else ()
    out = list(sentence.tokens)
    for j, (act, w) in enumerate(zip(plan.action[i].tolist(), plan.word[i].tolist(), strict=True)):
        if act == MASK:
            out[j] = mask_token
        elif act == SWAP:
            out[j] = words[w]
        elif act == NBR:
            out[j] = neighbours.words_array[w]
    return out


def _check(sentence: TaggedSentence, rng: np.random.Generator) -> None:
    if not isinstance(sentence, TaggedSentence):
        raise TypeError(f"sentence must be a TaggedSentence, got {type(sentence).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _apply(sentence, vocab, rng, mask_token="[MASK]", neighbours=None, **probs) -> TaggedSentence:
    for name in ("p_mask", "p_pos", "p_nbr"):
        if not 0.0 <= probs.get(name, 0.0) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {probs[name]}")
    u = rng.random((1, block_width(len(sentence))))
    plan = draw_plan([sentence], vocab, [u], neighbours=neighbours, **probs)
    tokens = render_tokens(sentence, plan, 0, vocab, mask_token, neighbours)
    a, b = int(plan.start[0, 0]), int(plan.end[0, 0])
    spaces = list(sentence.spaces[a:b])
    if spaces:
        spaces[-1] = ""
    return TaggedSentence(tuple(tokens[a:b]), tuple(spaces), sentence.tags[a:b])


def mask(
    sentence: TaggedSentence, rng: np.random.Generator, *, p: float, mask_token: str = "[MASK]"
) -> TaggedSentence:
    """Replace each token by ``mask_token`` with probability ``p`` (tags are kept)."""
    _check(sentence, rng)
    return _apply(sentence, None, rng, mask_token, p_mask=p, p_pos=0.0, p_ng=0.0, ngram_sizes=(1,))


def pos_replace(
    sentence: TaggedSentence, vocab: PosVocabulary, rng: np.random.Generator, *, p: float
) -> TaggedSentence:
    """Replace each token with probability ``p`` by a word of its tag, drawn by corpus frequency."""
    _check(sentence, rng)
    if not isinstance(vocab, PosVocabulary):
        raise TypeError(f"vocab must be a PosVocabulary, got {type(vocab).__name__}")
    return _apply(sentence, vocab, rng, p_mask=0.0, p_pos=p, p_ng=0.0, ngram_sizes=(1,))


def neighbour_swap(
    sentence: TaggedSentence, neighbours, rng: np.random.Generator, *, p: float
) -> TaggedSentence:
    """Replace each token with probability ``p`` by one of its ``k`` embedding neighbours
    (``augment.neighbours.Neighbours``), uniformly; a word without neighbours stays."""
    _check(sentence, rng)
    return _apply(
        sentence, None, rng, neighbours=neighbours,
        p_mask=0.0, p_pos=0.0, p_nbr=p, p_ng=0.0, ngram_sizes=(1,),
    )  # fmt: skip


def ngram(
    sentence: TaggedSentence, rng: np.random.Generator, *, sizes: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> TaggedSentence:
    """Keep one n-gram, ``n`` uniform over ``sizes`` and the start uniform over valid starts."""
    _check(sentence, rng)
    return _apply(sentence, None, rng, p_mask=0.0, p_pos=0.0, p_ng=1.0, ngram_sizes=tuple(sizes))
