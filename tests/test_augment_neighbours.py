"""The embedding-neighbour swap (beyond Tang): the k nearest words by cosine, drawn uniformly,
exclusive with mask and the POS swap, deterministic, and off by default (no draw changes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from test_augment_ops import SENT, VOCAB

from augment import AugmentConfig, TaggedSentence, source_rng
from augment.neighbours import Neighbours
from augment.ops import KEEP, MASK, NBR, SWAP, block_width, draw_plan, neighbour_swap
from augment.recipe import augment_batch, augment_example

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", ".", "cat", "owl", "a"]
VECTORS = np.random.default_rng(0).normal(size=(len(WORDS), 8)).astype(np.float32)
NBRS = Neighbours.from_vectors(WORDS, WORDS, VECTORS, k=3)


def test_the_neighbours_are_the_k_nearest_by_cosine_and_never_the_word_itself():
    unit = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
    for w, r in NBRS.rows.items():
        i = WORDS.index(w)
        sims = unit @ unit[i]
        sims[i] = -np.inf
        assert NBRS.matrix[r].tolist() == np.argsort(-sims, kind="stable")[:3].tolist()
    assert NBRS.lookup(["DOG", "zebra"]).tolist() == [NBRS.rows["dog"], -1]  # lowercased
    with pytest.raises(ValueError, match="k must be"):
        Neighbours.from_vectors(WORDS, WORDS, VECTORS, k=len(WORDS))


def test_real_glove_neighbours():
    n = Neighbours.glove(["king", "Movie", "xyzzyq"], k=15)
    near = lambda w: set(n.words_array[n.matrix[n.rows[w]]])  # noqa: E731
    assert {"queen", "prince"} <= near("king") and {"film", "movies"} <= near("movie")
    assert "xyzzyq" not in n.rows and n.k == 15


def _plan(n, **probs):
    u = source_rng(0, "nbr").random((n, block_width(len(SENT))))
    base = dict(p_mask=0.0, p_pos=0.0, p_ng=0.0, ngram_sizes=(1,), neighbours=NBRS)
    return draw_plan([SENT], VOCAB, [u], **(base | probs)), u


def test_rates_exclusivity_and_uniform_neighbours_over_20000_draws():
    plan, _ = _plan(20_000, p_mask=0.2, p_pos=0.2, p_nbr=0.3)
    a = plan.action
    for code, p in ((MASK, 0.2), (SWAP, 0.2), (NBR, 0.3), (KEEP, 0.3)):
        assert abs((a == code).mean() - p) < 0.015, code  # one action per token: a partition
    fox = SENT.tokens.index("fox")
    picks = plan.word[a[:, fox] == NBR, fox]
    allowed = NBRS.matrix[NBRS.rows["fox"]]
    assert set(picks.tolist()) <= set(allowed.tolist())
    counts = [(picks == c).sum() for c in allowed]
    assert stats.chisquare(counts).pvalue > 0.001  # uniform over the k neighbours
    assert plan.changed[a == NBR].all()  # a neighbour is never the word itself


def test_p_nbr_zero_changes_no_draw_and_the_op_is_deterministic():
    off, _ = _plan(500, p_mask=0.1, p_pos=0.1)
    zero, _ = _plan(500, p_mask=0.1, p_pos=0.1, p_nbr=0.0)
    assert (off.action == zero.action).all() and (off.word == zero.word).all()
    on1, _ = _plan(500, p_mask=0.1, p_pos=0.1, p_nbr=0.2)
    on2, _ = _plan(500, p_mask=0.1, p_pos=0.1, p_nbr=0.2)
    assert (on1.action == on2.action).all() and (on1.word == on2.word).all()
    # the other ops' decisions are untouched by turning the neighbour op on
    assert ((on1.action == MASK) == (off.action == MASK)).all()
    assert ((on1.action == SWAP) == (off.action == SWAP)).all()


def test_the_recipe_names_the_op_and_keeps_every_sample_reproducible():
    cfg = AugmentConfig(n_iter=50, p_mask=0.0, p_pos=0.0, p_nbr=0.5, p_ng=0.0, seed=3)
    a = augment_example("7", SENT, vocab=VOCAB, config=cfg, neighbours=NBRS)
    assert a == augment_example("7", SENT, vocab=VOCAB, config=cfg, neighbours=NBRS)
    assert a and {s.ops for s in a} == {"nbr"}
    vocabulary = set(WORDS) | set(SENT.tokens)
    assert all(set(s.text_a.split()) <= vocabulary for s in a)
    batch = augment_batch([("7", SENT, None), ("8", SENT, None)], vocab=VOCAB, config=cfg,
                          neighbours=NBRS)  # fmt: skip
    assert batch[0] == a  # a batch's composition never changes an example's samples
    mixed = augment_example("7", SENT, vocab=VOCAB, config=cfg.__class__(
        n_iter=50, p_mask=0.1, p_pos=0.1, p_nbr=0.1, seed=3), neighbours=NBRS)  # fmt: skip
    assert any("pos" in s.ops for s in mixed) and any("nbr" in s.ops for s in mixed)
    with pytest.raises(ValueError, match="needs neighbours"):
        augment_example("7", SENT, vocab=VOCAB, config=cfg)
    with pytest.raises(ValueError, match="p_nbr"):
        AugmentConfig(p_mask=0.5, p_pos=0.3, p_nbr=0.3)
    one = neighbour_swap(SENT, NBRS, np.random.default_rng(0), p=1.0)
    assert all(t in WORDS for t in one.tokens) and one.tags == SENT.tags
    assert all(t != o for t, o in zip(one.tokens, SENT.tokens, strict=True))


def test_default_config_has_the_op_off():
    assert AugmentConfig().p_nbr == 0.0 and AugmentConfig().nbr_k == 15
    sent = TaggedSentence.from_string("a/DT dog/NN ./.")
    assert augment_example("1", sent, vocab=VOCAB, config=AugmentConfig(n_iter=5)) == (
        augment_example("1", sent, vocab=VOCAB, config=AugmentConfig(n_iter=5), neighbours=NBRS)
    )


def test_a_build_with_the_neighbour_swap(glue_dir, tmp_path):
    import datasets
    from conftest import build_set, head

    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 60)
    build_set("sst2", src, tmp_path / "kd", n_iter=4, p_pos=0.0, p_nbr=0.15, nbr_k=10)
    ds = datasets.load_from_disk(str(tmp_path / "kd"))
    ops = [o for o in ds["ops"] if o]
    share = sum("nbr" in o for o in ops) / len(ops)
    assert share > 0.3 and not any("pos" in o for o in ops)
    manifest = __import__("json").loads((tmp_path / "kd" / "manifest.json").read_text())
    assert manifest["augment"]["p_nbr"] == 0.15 and manifest["augment"]["nbr_k"] == 10
