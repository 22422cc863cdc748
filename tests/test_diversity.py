"""Diversity metrics where the answer is known, the yield model against the real recipe, and
the report's new sections on classification, regression and logit-free sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIX, build_set, make_tiny_teacher

from augment import AugmentConfig, PosVocabulary, tag_texts
from augment.diversity import (
    bleu_to_source,
    distinct_n,
    draw_outcome_probabilities,
    same_word_probability,
    self_bleu,
)
from augment.ops import block_width
from augment.recipe import _Sides
from augment.seeding import source_uniforms
from transferset_cli import main as cli_main


def test_identical_samples_are_the_least_diverse():
    s = "the film is good and the plot is fine".split()
    same = [s] * 5
    assert self_bleu(same) == pytest.approx(1.0)
    assert bleu_to_source(same, s) == pytest.approx(1.0)
    for n in (1, 2, 3):  # every n-gram repeated 5 times: distinct = 1/5 of its maximum
        assert distinct_n(same, n) == pytest.approx(distinct_n([s], n) / 5)
    assert distinct_n(same, 2) == pytest.approx(1 / 5)


def test_disjoint_samples_are_the_most_diverse():
    words = iter(f"w{i}" for i in range(1000))
    disjoint = [[next(words) for _ in range(8)] for _ in range(5)]
    for n in (1, 2, 3):
        assert distinct_n(disjoint, n) == 1.0
    # no shared word at all: NLTK's BLEU is exactly 0 (smoothing only fills higher orders)
    assert self_bleu(disjoint) == 0.0 and bleu_to_source(disjoint[1:], disjoint[0]) == 0.0
    assert np.isnan(self_bleu(disjoint[:1])) and np.isnan(distinct_n([["a"]], 2))


def test_half_shared_siblings_sit_in_between():
    a = "a b c d e f g h".split()
    b = "a b c d w x y z".split()
    assert 0.2 < self_bleu([a, b]) < 0.8
    assert distinct_n([a, b], 1) == pytest.approx(12 / 16)


SENTENCES = [
    "good film",
    "I have a cat and a very lazy dog .",
    "Fine.",
    "the the the",
    "It is not what it is .",
]


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(n_iter=20_000, p_mask=0.2, p_pos=0.3, p_ng=0.5),
        AugmentConfig(n_iter=20_000),  # the paper's rates
        AugmentConfig(n_iter=20_000, p_mask=0.0, p_pos=0.6, p_ng=0.0),  # same-word swaps matter
    ],
)
def test_yield_model_matches_the_recipe_over_many_draws(nlp, config):
    tagged = list(tag_texts(nlp, SENTENCES))
    vocab = PosVocabulary.from_sentences(tagged)
    for k, sentence in enumerate(tagged):
        u = source_uniforms(config.seed, f"s{k}", (config.n_iter, block_width(len(sentence))))
        side = _Sides([sentence], [u], vocab, config)  # the recipe's own draws
        replaced = np.array(side.replaced[0])
        original = side.original(0)
        equal = np.array([side.text(0, i) == original for i in range(config.n_iter)]) & ~replaced
        p_equal, p_all = draw_outcome_probabilities(same_word_probability(sentence, vocab), config)
        for measured, predicted in ((equal.mean(), p_equal), (replaced.mean(), p_all)):
            se = np.sqrt(max(predicted * (1 - predicted), 1e-4) / config.n_iter)
            assert abs(measured - predicted) < 4.5 * se, (sentence.tokens, measured, predicted)
    # without same-word swaps the "I have a cat" prediction would be clearly lower
    s = tagged[1]
    with_same = draw_outcome_probabilities(same_word_probability(s, vocab), config)[0]
    without = draw_outcome_probabilities(np.zeros(len(s)), config)[0]
    assert config.p_pos == 0 or with_same > without


def test_report_has_diversity_yield_and_examples(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t")
    out = tmp_path / "set"
    build_set("sst2", FIX / "sst2_train.tsv", out, n_iter=6, teacher=str(teacher))
    assert (out / "pos_vocabulary.json").exists()
    assert cli_main(["report", str(out), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    for needle in (
        "| distinct-1 |",
        "| self-BLEU among a source's samples |",
        "| BLEU of samples against their source |",
        "![yield](yield.png)",
        "| source tokens | sources | kept per source | predicted survivors |",
        "## Example samples",
        "| teacher (samples) |",
        "mean confidence",
    ):
        assert needle in text, needle
    # every source is in the sample of a small set: the kept counts add up to the samples
    assert f"{manifest['counts']['originals_written']:,} sources and their " in text
    assert f"their {manifest['counts']['samples_written']:,} samples" in text


def test_report_on_a_regression_set(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=None)
    out = tmp_path / "set"
    build_set("stsb", FIX / "stsb_dev.tsv", out, n_iter=3, teacher=str(teacher))
    assert cli_main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "![teacher_scores](teacher_scores.png)" in text and "| distinct-2 |" in text
    assert "Shown for single-sentence tasks" in text  # pairs: no single-sentence yield model
    assert "‖" in text  # pair samples shown as A ‖ B
