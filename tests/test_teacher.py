"""The teacher stage: logits equal a direct model call, labels are checked, the cache works."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import FIX, build_set, make_tiny_teacher
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pipelines import build
from pipelines.teacher import Teacher, TeacherConfig, label_order, token_budget_batches


def direct_logits(path, texts_a, texts_b=None, max_length=128):
    """One text at a time, no padding: the reference the pipeline must match."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for k, a in enumerate(texts_a):
            b = texts_b[k] if texts_b is not None else None
            enc = tok(a, b, truncation=True, max_length=max_length, return_tensors="pt")
            out.append(model(**enc).logits[0].numpy())
    return np.stack(out)


def built(out: Path):
    return datasets.load_from_disk(str(out)), json.loads((out / "manifest.json").read_text())


def test_token_budget_batches_cover_every_row_once_within_budget():
    lengths = np.array([5, 50, 7, 120, 9, 9, 64, 3, 33] * 20)
    batches = token_budget_batches(lengths, max_tokens=400, max_batch=16)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * lengths[b].max() <= 400
    # sorted by length: padding waste is small
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded / lengths.sum() < 1.1


@pytest.mark.parametrize("workers", [1, 2])
def test_pipeline_logits_equal_a_direct_model_call(tiny_teacher, tmp_path, workers):
    out = tmp_path / "out"
    extra = (
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"] if workers == 2 else []
    )
    build_set(
        "sst2",
        FIX / "sst2_train.tsv",
        out,
        n_iter=4,
        teacher=str(tiny_teacher),
        teacher_max_tokens=64,
        beam_args=extra,
    )
    ds, m = built(out)
    assert ds.features["teacher_logits"].feature.dtype == "float32"
    got = np.array(ds["teacher_logits"], dtype=np.float32)
    assert got.shape == (len(ds), 2)
    want = direct_logits(tiny_teacher, ds["text_a"])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    t = m["teacher"]
    assert t["scored"] == len(ds) and t["forward_passes"] >= 2  # budget 64 forces several
    assert t["weights_sha256"] and t["id2label"] == {"0": "negative", "1": "positive"}
    assert m["augment"]["mask_token"] == "[MASK]"  # from the teacher's tokenizer


def test_pairs_are_encoded_as_pairs(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=("not_equivalent", "equivalent"))
    out = tmp_path / "out"
    build_set("mrpc", FIX / "mrpc_train.tsv", out, n_iter=3, teacher=str(teacher))
    ds, _ = built(out)
    got = np.array(ds["teacher_logits"], dtype=np.float32)
    np.testing.assert_allclose(got, direct_logits(teacher, ds["text_a"], ds["text_b"]), atol=1e-5)


def test_regression_teacher_writes_one_logit(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=None)
    out = tmp_path / "out"
    build_set("stsb", FIX / "stsb_dev.tsv", out, n_iter=2, teacher=str(teacher))
    ds, _ = built(out)
    assert all(len(x) == 1 for x in ds["teacher_logits"])
    assert ds.features["label"].dtype == "float32"


def test_reversed_labels_are_reordered(tmp_path):
    straight = make_tiny_teacher(tmp_path / "a", labels=("negative", "positive"), seed=3)
    flipped = make_tiny_teacher(tmp_path / "b", labels=("positive", "negative"), seed=3)
    texts = ["a good film .", "it is bad", "not good"]
    task = ("negative", "positive")
    a = Teacher(TeacherConfig(str(straight)), task).logits(texts)
    b = Teacher(TeacherConfig(str(flipped)), task).logits(texts)
    # same weights; the flipped teacher's output 0 means "positive", so it moves to column 1
    np.testing.assert_array_equal(b, a[:, ::-1])
    assert label_order({0: "positive", 1: "negative"}, task) == [1, 0]


def test_label_mismatches_fail_clearly_or_need_a_map(tmp_path):
    other = make_tiny_teacher(tmp_path / "o", labels=("contradiction", "entailment"))
    with pytest.raises(ValueError, match=r"do not match the task's labels.*--label-map"):
        build_set("sst2", FIX / "sst2_train.tsv", tmp_path / "x", teacher=str(other))
    assert not (tmp_path / "x" / "manifest.json").exists()
    mapped = label_order(
        {0: "contradiction", 1: "entailment"},
        ("negative", "positive"),
        (("negative", "contradiction"), ("positive", "entailment")),
    )
    assert mapped == [0, 1]
    generic = {0: "LABEL_0", 1: "LABEL_1"}
    assert label_order(generic, ("negative", "positive")) == [0, 1]
    with pytest.raises(ValueError):
        label_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "positive"))
    with pytest.raises(ValueError, match="one output"):
        label_order(generic, None)


def test_pickle_checkpoints_are_refused_unless_allowed(tiny_teacher, tmp_path):
    import shutil

    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_teacher, pickled)
    state = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save(state, pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="--allow-pickle"):
        build_set("sst2", FIX / "sst2_train.tsv", tmp_path / "x", teacher=str(pickled))
    out = tmp_path / "ok"
    build_set(
        "sst2", FIX / "sst2_train.tsv", out, n_iter=2, teacher=str(pickled), allow_pickle=True
    )
    ds, _ = built(out)
    np.testing.assert_allclose(
        np.array(ds["teacher_logits"]), direct_logits(tiny_teacher, ds["text_a"]), atol=1e-5
    )


def test_cache_skips_the_teacher_on_a_rerun(tiny_teacher, tmp_path):
    cache = tmp_path / "cache"
    common = [
        "--task",
        "sst2",
        "--input",
        str(FIX / "sst2_train.tsv"),
        "--teacher",
        str(tiny_teacher),
        "--teacher-cache",
        str(cache),
    ]
    build.run([*common, "--out", str(tmp_path / "one"), "--n-iter", "5"])
    build.run([*common, "--out", str(tmp_path / "two"), "--n-iter", "5"])
    _, first = built(tmp_path / "one")
    _, second = built(tmp_path / "two")
    assert first["teacher"]["forward_passes"] > 0 and first["teacher"]["cache_hits"] == 0
    assert second["teacher"]["forward_passes"] == 0 and second["teacher"]["scored"] == 0
    assert second["teacher"]["cache_hits"] == second["counts"]["written"]
    name = "data-00000-of-00001.arrow"
    assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert len(list(cache.glob("*/part-*.arrow"))) == 1  # nothing new to add the second time
    # more samples per source: only the new texts go to the teacher
    build.run([*common, "--out", str(tmp_path / "three"), "--n-iter", "12"])
    ds3, third = built(tmp_path / "three")
    assert third["teacher"]["scored"] == third["counts"]["written"] - first["counts"]["written"]
    assert third["teacher"]["scored"] > 0
    np.testing.assert_allclose(
        np.array(ds3["teacher_logits"]), direct_logits(tiny_teacher, ds3["text_a"]), atol=1e-5
    )
