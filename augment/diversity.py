"""How diverse a transfer set's samples are, and how many the recipe should keep.

Text metrics use NLTK (its n-gram utilities and smoothed sentence BLEU; no data downloads) over
token lists. The yield model is the recipe's own arithmetic: one draw per token picks mask
(``p_mask``), a same-POS word (``p_pos``, frequency-weighted, so it can be the same word) or
keep; then with ``p_ng`` an n-gram window of ``n ~ uniform(ngram_sizes)`` tokens is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augment.config import AugmentConfig
from augment.types import TaggedSentence
from augment.vocab import PosVocabulary


# -- text diversity --------------------------------------------------------------------------------
def distinct_n(token_lists: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the texts (Li et al. 2016); NaN when there are none."""
    from nltk.util import ngrams

    total, seen = 0, set()
    for tokens in token_lists:
        grams = list(ngrams(tokens, n))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else float("nan")


def _bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(
        sentence_bleu(
            [list(r) for r in references],
            list(hypothesis),
            smoothing_function=SmoothingFunction().method1,
        )
    )


def self_bleu(siblings: Sequence[Sequence[str]]) -> float:
    """Mean BLEU-4 of each sample against its siblings (the other samples of its source) as
    references (Zhu et al. 2018): 1 when siblings are identical, near 0 when they share no
    words. NaN with fewer than two samples."""
    if len(siblings) < 2:
        return float("nan")
    return float(
        np.mean(
            [
                _bleu(s, [r for j, r in enumerate(siblings) if j != i])
                for i, s in enumerate(siblings)
            ]
        )
    )


def bleu_to_source(samples: Sequence[Sequence[str]], source: Sequence[str]) -> float:
    """Mean BLEU-4 of the samples against their source sentence; NaN without samples."""
    if not samples:
        return float("nan")
    return float(np.mean([_bleu(s, [source]) for s in samples]))


# -- the yield model -------------------------------------------------------------------------------
def same_word_probability(sentence: TaggedSentence, vocab: PosVocabulary) -> np.ndarray:
    """Per token: the chance that a POS swap draws the token's own word (a tag the vocabulary
    does not know keeps its word: 1)."""
    out = np.ones(len(sentence), dtype=np.float64)
    for i, (token, tag) in enumerate(zip(sentence.tokens, sentence.tags, strict=True)):
        words = vocab.words(tag)
        total = sum(words.values())
        if total:
            out[i] = words.get(token, 0) / total
    return out


def _window_products(r: np.ndarray, n: int) -> np.ndarray:
    """Products of ``r`` over every window of ``n`` consecutive tokens."""
    return np.prod(np.lib.stride_tricks.sliding_window_view(r, n), axis=1)


def draw_outcome_probabilities(same: np.ndarray, config: AugmentConfig) -> tuple[float, float]:
    """``(P(sample == source), P(every kept token replaced))`` of one draw for a sentence whose
    tokens have same-word swap probabilities ``same``. Both are dropped by the recipe (the
    second only with ``drop_replaced``: else 0), so a draw survives with ``1 - sum``; the
    survivors can still repeat each other (a sibling duplicate), which this model does not
    count."""
    length = len(same)
    if length == 0:
        return 1.0, 0.0
    p_m, p_p, p_ng = config.p_mask, config.p_pos, config.p_ng
    keep = 1.0 - p_m - p_p + p_p * same  # the token comes out as itself
    replaced = p_m + p_p * (1.0 - same)
    sizes = config.ngram_sizes
    whole = (1.0 - p_ng) + p_ng * np.mean([n >= length for n in sizes])  # window = sentence
    p_equal = float(np.prod(keep) * whole)
    if not config.drop_replaced:
        return p_equal, 0.0
    p_all = float(np.prod(replaced) * whole)
    for n in sizes:
        if n < length:
            p_all += p_ng / len(sizes) * float(np.mean(_window_products(replaced, n)))
    return p_equal, p_all


def predicted_survivors(sentence: TaggedSentence, vocab: PosVocabulary, config: AugmentConfig):
    """Expected draws of ``n_iter`` that the recipe's two drop rules let through."""
    p_equal, p_all = draw_outcome_probabilities(same_word_probability(sentence, vocab), config)
    return config.n_iter * (1.0 - p_equal - p_all)
