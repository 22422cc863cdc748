"""The three ops and the per-token draw, on hand-tagged sentences (no spaCy model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from augment import PosVocabulary, TaggedSentence, mask, ngram, pos_replace, source_rng
from augment.ops import KEEP, MASK, SWAP, block_width, draw_plan

SENT = TaggedSentence.from_string(
    "the/DT quick/JJ brown/JJ fox/NN jumps/VBZ over/IN the/DT lazy/JJ dog/NN ./."
)
VOCAB = PosVocabulary(
    {
        "DT": {"the": 60, "a": 30, "every": 10},
        "JJ": {"quick": 40, "lazy": 30, "brown": 20, "odd": 10},
        "NN": {"fox": 50, "dog": 25, "cat": 15, "owl": 10},
        "VBZ": {"jumps": 70, "runs": 30},
        "IN": {"over": 80, "under": 20},
        ".": {".": 1},
    }
)


def plan_for(sentence, n, *, seed=0, vocab=VOCAB, **probs):
    u = source_rng(seed, "rates").random((n, block_width(len(sentence))))
    defaults = dict(p_mask=0.1, p_pos=0.1, p_ng=0.25, ngram_sizes=(1, 2, 3, 4, 5))
    return draw_plan([sentence], vocab, [u], **(defaults | probs))


def test_mask_p1_masks_every_token():
    out = mask(SENT, np.random.default_rng(0), p=1.0, mask_token="<mask>")
    assert out.tokens == ("<mask>",) * len(SENT)
    assert out.tags == SENT.tags


def test_mask_p0_is_identity():
    assert mask(SENT, np.random.default_rng(0), p=0.0).tokens == SENT.tokens


def test_pos_replace_p1_replaces_every_token_with_same_tag_word():
    rng = np.random.default_rng(1)
    for _ in range(200):
        out = pos_replace(SENT, VOCAB, rng, p=1.0)
        assert len(out) == len(SENT)
        for word, tag in zip(out.tokens, out.tags, strict=True):
            assert VOCAB.count(tag, word) > 0, (word, tag)


def test_pos_replace_keeps_words_whose_tag_is_not_in_vocabulary():
    s = TaggedSentence.from_string("wow/UH the/DT fox/NN")
    rng = np.random.default_rng(2)
    for _ in range(50):
        out = pos_replace(s, VOCAB, rng, p=1.0)
        assert out.tokens[0] == "wow"


def test_ngram_p1_is_contiguous_and_of_length_1_to_5():
    rng = np.random.default_rng(3)
    lengths = set()
    for _ in range(500):
        out = ngram(SENT, rng)
        k = len(out)
        assert 1 <= k <= 5
        starts = [i for i in range(len(SENT) - k + 1) if SENT.tokens[i : i + k] == out.tokens]
        assert starts, out.tokens
        lengths.add(k)
    assert lengths == {1, 2, 3, 4, 5}


def test_ngram_of_a_sentence_shorter_than_n_stays_whole():
    short = TaggedSentence.from_string("a/DT fox/NN")
    rng = np.random.default_rng(4)
    seen = {ngram(short, rng, sizes=(3, 4, 5)).tokens for _ in range(50)}
    assert seen == {("a", "fox")}


def test_recipe_p_ng_1_windows_are_contiguous_ngrams_of_the_modified_sentence():
    plan = plan_for(SENT, 2000, p_ng=1.0, p_mask=0.3, p_pos=0.3)
    width = plan.end[:, 0] - plan.start[:, 0]
    assert plan.ngram.all()
    assert width.min() == 1 and width.max() == 5
    assert (plan.start[:, 0] >= 0).all() and (plan.end[:, 0] <= len(SENT)).all()


def test_rates_over_20000_draws_are_within_1_5_points():
    n = 20_000
    plan = plan_for(SENT, n, p_mask=0.1, p_pos=0.1, p_ng=0.25)
    tokens = plan.action.size
    assert abs((plan.action == MASK).sum() / tokens - 0.1) < 0.015
    assert abs((plan.action == SWAP).sum() / tokens - 0.1) < 0.015
    assert abs(plan.ngram.mean() - 0.25) < 0.015
    # other rates, to show the check can fail
    plan = plan_for(SENT, n, p_mask=0.3, p_pos=0.05, p_ng=0.6)
    assert abs((plan.action == MASK).mean() - 0.3) < 0.015
    assert abs((plan.action == SWAP).mean() - 0.05) < 0.015
    assert abs(plan.ngram.mean() - 0.6) < 0.015


def test_ngram_size_is_uniform_over_1_to_5_chi_square():
    plan = plan_for(SENT, 20_000, p_ng=1.0)
    width = (plan.end - plan.start)[:, 0]
    counts = np.bincount(width, minlength=6)[1:6]
    assert counts.sum() == 20_000
    assert stats.chisquare(counts).pvalue > 1e-3


def test_ngram_start_is_uniform_over_every_valid_start():
    # Tang's code never picks the last start; here all len - n + 1 starts are equally likely.
    u = source_rng(0, "starts").random((20_000, block_width(len(SENT))))
    plan = draw_plan([SENT], None, [u], p_mask=0, p_pos=0, p_ng=1.0, ngram_sizes=(3,))
    counts = np.bincount(plan.start[:, 0], minlength=len(SENT) - 2)
    assert len(counts) == len(SENT) - 3 + 1 and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_swap_words_follow_vocabulary_frequencies_chi_square():
    nn = TaggedSentence.from_string("fox/NN")
    plan = plan_for(nn, 20_000, p_mask=0.0, p_pos=1.0, p_ng=0.0)
    words = VOCAB.compiled.words
    drawn = [words[w] for w in plan.word[:, 0]]
    names = sorted(VOCAB.words("NN"))
    observed = np.array([drawn.count(w) for w in names])
    expected = np.array([VOCAB.count("NN", w) for w in names], dtype=float)
    expected *= observed.sum() / expected.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    # and the test can tell frequency weighting from a uniform draw
    uniform = np.full(len(names), observed.sum() / len(names))
    assert stats.chisquare(observed, uniform).pvalue < 1e-6


def test_vocabulary_sample_frequencies():
    rng = np.random.default_rng(5)
    drawn = VOCAB.sample("JJ", rng, size=20_000)
    names = sorted(VOCAB.words("JJ"))
    observed = np.array([drawn.count(w) for w in names])
    expected = np.array([VOCAB.count("JJ", w) for w in names], dtype=float) / 100 * 20_000
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert VOCAB.sample("UH", rng) is None
    assert VOCAB.sample("VBZ", rng) in {"jumps", "runs"}


def test_mask_and_swap_are_mutually_exclusive_and_partition_the_tokens():
    # p_mask + p_pos = 1: every token is either masked or swapped, never both, never kept.
    plan = plan_for(SENT, 5000, p_mask=0.5, p_pos=0.5, p_ng=0.0)
    masked = plan.action == MASK
    swapped = plan.action == SWAP
    assert not (masked & swapped).any()
    assert (masked | swapped).all()
    assert (plan.word[masked] == -1).all()  # a masked token drew no swap word
    assert (plan.word[swapped] >= 0).all()
    assert abs(masked.mean() - 0.5) < 0.015
    assert not (plan.action == KEEP).any()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: mask("a b", np.random.default_rng(0), p=0.5), "sentence"),
        (lambda: mask(SENT, 0, p=0.5), "rng"),
        (lambda: pos_replace(SENT, {"NN": {"a": 1}}, np.random.default_rng(0), p=0.5), "vocab"),
        (lambda: ngram(SENT, np.random.RandomState(0)), "rng"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(call, name):
    with pytest.raises(TypeError, match=name):
        call()


def test_probability_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask(SENT, np.random.default_rng(0), p=1.5)
