"""The Tang recipe end to end: dedup, determinism, pairs, bad input."""

from __future__ import annotations

import pickle
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augment import (
    AugmentConfig,
    PosVocabulary,
    Sample,
    TaggedSentence,
    augment_batch,
    augment_example,
)

A = TaggedSentence.from_string("I/PRP have/VBP a/DT cat/NN and/CC a/DT very/RB lazy/JJ dog/NN ./.")
B = TaggedSentence.from_string("you/PRP love/VBP the/DT bird/NN")
VOCAB = PosVocabulary.from_sentences([A, B])
CFG = AugmentConfig()


def corpus(n=300, seed=0):
    """Small random sentences over a tiny vocabulary: plenty of collisions for dedup."""
    rnd = random.Random(seed)
    lexicon = [
        ("a", "DT"),
        ("the", "DT"),
        ("cat", "NN"),
        ("dog", "NN"),
        ("runs", "VBZ"),
        ("sleeps", "VBZ"),
        ("big", "JJ"),
        ("red", "JJ"),
        ("fast", "RB"),
        (".", "."),
    ]
    return [TaggedSentence.from_pairs(rnd.choices(lexicon, k=rnd.randint(1, 12))) for _ in range(n)]


def test_exact_samples_for_a_fixed_seed():
    # Written down once from this implementation; any change to the draw layout shows here.
    got = augment_example("1", A, vocab=VOCAB, config=AugmentConfig(n_iter=6))
    assert got == [
        Sample(0, "I have a cat [MASK] a very lazy [MASK] .", None, "mask"),
        Sample(1, "I have a cat and the very lazy dog .", None, "pos"),
        Sample(2, "have a cat and", None, "ngram"),
        Sample(3, "[MASK] a very", None, "mask+ngram"),
        Sample(5, "[MASK] a", None, "mask+ngram"),
    ]


def test_no_sample_equals_an_original_and_none_repeats():
    sentences = corpus()
    vocab = PosVocabulary.from_sentences(sentences)
    cfg = AugmentConfig(n_iter=30, p_mask=0.2, p_pos=0.3, p_ng=0.4)
    total = 0
    for k, s in enumerate(sentences):
        samples = augment_example(str(k), s, vocab=vocab, config=cfg)
        texts = [x.text_a for x in samples]
        assert s.text.strip() not in texts
        assert len(texts) == len(set(texts))
        assert [x.index for x in samples] == sorted({x.index for x in samples})
        assert all(0 <= x.index < 30 for x in samples)
        total += len(samples)
    assert total > 1000  # the checks above ran over many samples


def test_samples_whose_every_token_was_replaced_are_dropped():
    # p_mask = 1 masks every token, so every sample is all-replaced and dropped.
    assert augment_example("1", A, vocab=VOCAB, config=AugmentConfig(p_mask=1.0, p_pos=0)) == []
    # with p_pos = 1 only samples where a swap drew the original word survive
    cfg = AugmentConfig(p_mask=0.0, p_pos=1.0, p_ng=0.0, n_iter=200)
    for x in augment_example("1", A, vocab=VOCAB, config=cfg):
        kept = [w for w, o in zip(x.text_a.split(), A.tokens, strict=True) if w == o]
        assert kept, x


def test_no_drop_replaced_keeps_all_replaced_samples_and_nothing_else_changes():
    keep = AugmentConfig(p_mask=1.0, p_pos=0, p_ng=0, drop_replaced=False)
    masked = augment_example("1", A, vocab=VOCAB, config=keep)
    assert len(masked) == 1 and masked[0].text_a.replace("[MASK]", "").strip() == ""
    base = AugmentConfig(n_iter=200, p_mask=0.2, p_pos=0.3, p_ng=0.3)
    kept = augment_example("9", A, vocab=VOCAB, config=base)
    more = augment_example(
        "9", A, vocab=VOCAB, config=AugmentConfig(**(base.to_dict() | {"drop_replaced": False}))
    )
    # the rule only removes samples: every kept one is still there, with its index
    assert {(x.index, x.text_a) for x in kept} < {(x.index, x.text_a) for x in more}


def test_ops_names_what_changed_the_kept_text():
    cfg = AugmentConfig(n_iter=200, p_mask=0.2, p_pos=0.2, p_ng=0.5)
    samples = augment_example("7", A, vocab=VOCAB, config=cfg)
    assert {x.ops for x in samples} >= {"mask", "pos", "ngram", "mask+pos", "mask+ngram"}
    for x in samples:
        words = x.text_a.split()
        assert ("mask" in x.ops) == ("[MASK]" in words)
        assert ("ngram" in x.ops) == (len(words) < len(A))


def test_same_seed_same_samples_whatever_the_order_and_batching():
    sentences = corpus(120)
    vocab = PosVocabulary.from_sentences(sentences)
    examples = [(f"s{k}", s, None) for k, s in enumerate(sentences)]
    one_by_one = {sid: augment_example(sid, s, vocab=vocab, config=CFG) for sid, s, _ in examples}
    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    batched = {}
    for k in range(0, len(shuffled), 37):
        chunk = shuffled[k : k + 37]
        for (sid, _, _), samples in zip(
            chunk, augment_batch(chunk, vocab=vocab, config=CFG), strict=True
        ):
            batched[sid] = samples
    assert batched == one_by_one
    other_seed = {
        sid: augment_example(sid, s, vocab=vocab, config=AugmentConfig(seed=1))
        for sid, s, _ in examples
    }
    assert other_seed != one_by_one
    differing = sum(other_seed[k] != one_by_one[k] for k in one_by_one)
    assert differing > 100


def test_sample_i_depends_only_on_seed_source_and_i():
    long = augment_example("42", A, vocab=VOCAB, config=AugmentConfig(n_iter=20))
    short = augment_example("42", A, vocab=VOCAB, config=AugmentConfig(n_iter=7))
    assert short == [x for x in long if x.index < 7]
    assert augment_example("43", A, vocab=VOCAB, config=CFG) != long


def test_vocabulary_built_from_parts_in_any_order_gives_the_same_samples():
    sentences = corpus(90)
    whole = PosVocabulary.from_sentences(sentences)
    parts = [PosVocabulary.from_sentences(sentences[k::3]) for k in range(3)]
    merged = PosVocabulary.merged(reversed(parts))
    assert merged == whole
    assert augment_example("x", A, vocab=merged, config=CFG) == augment_example(
        "x", A, vocab=whole, config=CFG
    )


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("cycle", [(True, False), (False, True), (True, True)]),
        ("a", [(True, False)]),
        ("b", [(False, True)]),
        ("both", [(True, True)]),
    ],
)
def test_pair_modes_augment_the_sides_they_say(mode, expected):
    cfg = AugmentConfig(n_iter=300, pair_mode=mode, p_mask=0.3, p_pos=0.2)
    samples = augment_example("p", A, B, vocab=VOCAB, config=cfg)
    assert len(samples) > 50
    touched = {True: 0, False: 0}
    for x in samples:
        may_a, may_b = expected[x.index % len(expected)]
        changed_a, changed_b = x.text_a != A.text, x.text_b != B.text
        assert changed_a or changed_b
        assert may_a or not changed_a, x
        assert may_b or not changed_b, x
        touched[changed_a and changed_b] += 1
    assert touched[True] > 0 if mode in ("cycle", "both") else touched[True] == 0
    pairs = [(x.text_a, x.text_b) for x in samples]
    assert len(pairs) == len(set(pairs))


def test_pairs_and_singles_cannot_share_a_batch():
    with pytest.raises(ValueError, match="only single sentences or only pairs"):
        augment_batch([("1", A, None), ("2", A, B)], vocab=VOCAB, config=CFG)


def test_text_is_rebuilt_with_the_original_whitespace():
    s = TaggedSentence(("Hello", ",", "world", "!"), ("", "  ", "", ""), ("UH", ",", "NN", "."))
    cfg = AugmentConfig(p_mask=0.5, p_pos=0.0, p_ng=0.0, n_iter=50, mask_token="<m>")
    samples = augment_example("w", s, vocab=VOCAB, config=cfg)
    assert len(samples) > 5
    for x in samples:
        assert re.fullmatch(r"(Hello|<m>)(,|<m>)  (world|<m>)(!|<m>)", x.text_a), x.text_a


def test_empty_and_whitespace_only_sentences_give_no_samples():
    empty = TaggedSentence((), (), ())
    assert augment_example("e", empty, vocab=VOCAB, config=CFG) == []
    assert augment_example("e", empty, empty, vocab=VOCAB, config=CFG) == []
    # a pair with one empty side still augments the other side
    samples = augment_example("e", empty, B, vocab=VOCAB, config=CFG)
    assert samples and all(x.text_a == "" for x in samples)


def test_a_10000_token_sentence_works_and_max_tokens_refuses_it():
    words = [("cat", "NN"), ("dog", "NN"), ("the", "DT")] * 3334
    huge = TaggedSentence.from_pairs(words[:10_000])
    unlimited = AugmentConfig(n_iter=5, p_ng=0, max_tokens=None)
    samples = augment_example("h", huge, vocab=VOCAB, config=unlimited)
    assert len(samples) == 5
    assert all(len(x.text_a.split()) == 10_000 for x in samples)
    with pytest.raises(ValueError, match="10000 tokens, over max_tokens=512"):
        augment_example("h", huge, vocab=VOCAB, config=AugmentConfig())  # the default: 512


def test_unknown_tags_keep_their_words():
    s = TaggedSentence.from_string("wow/UH ouch/UH")
    cfg = AugmentConfig(p_mask=0.0, p_pos=1.0, p_ng=0.0)
    assert augment_example("u", s, vocab=VOCAB, config=cfg) == []  # nothing could change


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(source_id=1, a=A), "source_id"),
        (dict(source_id="1", a="I have a cat"), "a"),
        (dict(source_id="1", a=A, b=["x"]), "b"),
        (dict(source_id="1", a=A, vocab={"NN": {"cat": 1}}), "vocab"),
        (dict(source_id="1", a=A, config={"n_iter": 3}), "config"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(kwargs, name):
    kwargs = {"vocab": VOCAB, "config": CFG} | kwargs
    with pytest.raises(TypeError, match=rf"^{name} must be"):
        augment_example(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(p_mask=-0.1), r"p_mask must be a probability in \[0, 1\]"),
        (dict(p_ng=1.5), r"p_ng must be a probability"),
        (dict(p_mask=0.6, p_pos=0.5), r"p_mask \+ p_pos \+ p_nbr must be <= 1"),
        (dict(n_iter=-1), "n_iter must be >= 0"),
        (dict(pair_mode="ab"), "pair_mode must be one of"),
        (dict(tag_scheme="upos"), "tag_scheme must be one of"),
        (dict(ngram_sizes=()), "ngram_sizes"),
        (dict(mask_token=" "), "mask_token"),
        (dict(max_tokens=0), "max_tokens"),
    ],
)
def test_config_is_validated_with_clear_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**kwargs)


def test_config_round_trips_and_is_frozen():
    cfg = AugmentConfig(n_iter=3, ngram_sizes=(2, 3), seed=9)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(AttributeError):
        cfg.n_iter = 4  # type: ignore[misc]
    with pytest.raises(TypeError, match="n_iter must be an int"):
        AugmentConfig(n_iter=2.0)


def test_vocabulary_serialises_and_pickles():
    v = PosVocabulary.from_sentences(corpus(50))
    assert PosVocabulary.from_json(v.to_json()) == v
    assert v.compiled.words  # a compiled cache must not travel in the pickle
    clone = pickle.loads(pickle.dumps(v))
    assert clone == v and clone._compiled is None
    assert pickle.loads(pickle.dumps(A)) == A
    assert len(v) == sum(len(v.words(t)) for t in v.tags)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=0, max_size=15),
    seed=st.integers(0, 2**32),
    p_mask=st.floats(0, 0.5),
    p_pos=st.floats(0, 0.5),
    p_ng=st.floats(0, 1),
)
def test_invariants_hold_for_any_sentence(words, seed, p_mask, p_pos, p_ng):
    s = TaggedSentence.from_pairs([(w, "X" if w < "c" else "Y") for w in words])
    cfg = AugmentConfig(p_mask=p_mask, p_pos=p_pos, p_ng=p_ng, seed=seed, n_iter=12)
    vocab = PosVocabulary({"X": {"a": 3, "b": 1}, "Y": {"c": 1, "d": 1, "e": 5}})
    samples = augment_example("h", s, vocab=vocab, config=cfg)
    texts = [x.text_a for x in samples]
    assert len(texts) == len(set(texts)) and s.text not in texts
    for x in samples:
        toks = x.text_a.split()
        assert 1 <= len(toks) <= len(s)
        assert x.ops


def test_the_fast_per_source_stream_is_source_rng():
    from augment.seeding import source_rng, source_uniforms

    for sid in ("0", "17", "a-b"):
        for seed in (0, 5):
            want = source_rng(seed, sid).random((4, 9))
            assert (source_uniforms(seed, sid, (4, 9)) == want).all()
    assert not (source_uniforms(0, "0", (4, 9)) == source_uniforms(0, "1", (4, 9))).all()
