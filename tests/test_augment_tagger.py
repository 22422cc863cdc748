"""Tagging with the real spaCy model (installed by `make setup`)."""

from __future__ import annotations

import pytest

from augment import AugmentConfig, PosVocabulary, augment_example, load_tagger, tag_texts
from augment import tagger as tagger_mod


def test_real_model_tags_the_reference_sentence(nlp):
    [s] = tag_texts(nlp, ["I have a cat and a very lazy dog ."])
    assert s.tokens == ("I", "have", "a", "cat", "and", "a", "very", "lazy", "dog", ".")
    assert s.tags == ("PRP", "VBP", "DT", "NN", "CC", "DT", "RB", "JJ", "NN", ".")


def test_only_the_components_the_scheme_needs_run(nlp):
    assert nlp.pipe_names == ["tok2vec", "tagger"]
    upos = load_tagger(scheme="pos")
    assert upos.pipe_names == ["tok2vec", "tagger", "attribute_ruler"]
    [s] = tag_texts(upos, ["I like a cat ."], scheme="pos")
    assert s.tags == ("PRON", "VERB", "DET", "NOUN", "PUNCT")


def test_whitespace_is_kept_and_whitespace_tokens_fold_away(nlp):
    texts = ["it 's a  charming   film . ", "   ", "", "  leading"]
    out = list(tag_texts(nlp, texts))
    assert out[0].text == texts[0]
    assert "_SP" not in out[0].tags and "" not in out[0].tokens
    assert len(out[1]) == 0 and len(out[2]) == 0
    assert out[3].tokens == ("leading",)
    vocab = PosVocabulary.from_sentences(out)
    assert augment_example("1", out[1], vocab=vocab, config=AugmentConfig()) == []


def test_tagging_a_10000_token_text_works(nlp):
    [s] = tag_texts(nlp, ["good " * 10_000])
    assert len(s) == 10_000


def test_missing_models_give_a_message_listing_what_was_tried(monkeypatch):
    monkeypatch.setattr(tagger_mod, "DEFAULT_MODELS", ("no_such_model_a", "no_such_model_b"))
    with pytest.raises(OSError) as err:
        load_tagger()
    text = str(err.value)
    for name in ("no_such_model_a", "no_such_model_b", "pip install"):
        assert name in text


def test_a_given_name_that_fails_is_refused_not_swapped_for_another_tagger():
    # the manifest records the name: a silent fallback would make it lie
    with pytest.raises(OSError, match="'no_such_model_c' can't be used as a tagger"):
        load_tagger("no_such_model_c")
    assert "tagger" in load_tagger("no_such_model_c", fallback=True).pipe_names
    assert tagger_mod.resolve_tagger(None) in tagger_mod.DEFAULT_MODELS


def test_wrong_input_types(nlp):
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        list(tag_texts(nlp, ["fine", 3]))
    with pytest.raises(ValueError, match="scheme"):
        load_tagger(scheme="ud")


def test_word_tokenizer_matches_the_tagger_and_keeps_masks_whole(nlp):
    from augment import word_tokenizer

    texts = ["it 's a well-made , witty film .", "do n't [MASK] it", "well[MASK]made"]
    tokenize = word_tokenizer()
    got = tokenize(texts)
    assert got[0] == list(next(iter(tag_texts(nlp, texts[:1]))).tokens)
    assert got[1] == ["do", "n't", "[MASK]", "it"]
    assert got[2] == ["well", "[MASK]", "made"]
    assert word_tokenizer("<mask>")(["a <mask> b"]) == [["a", "<mask>", "b"]]
