"""Pair and regression tasks on real GLUE rows: MRPC's pair cycling, an STS-B regression teacher
and a regression student that learns it."""

from __future__ import annotations

import json

import datasets
import numpy as np
from conftest import build_set, head, make_tiny_teacher

from distill.api import load_model
from distill.data import load_transfer_set
from distill.students import predict
from distill.train import TrainConfig, train_student


def test_stsb_regression_teacher_and_student_on_real_rows(glue_dir, tmp_path):
    src = head(glue_dir / "STS-B" / "train.tsv", tmp_path / "stsb.tsv", 150)
    teacher = make_tiny_teacher(tmp_path / "t", labels=None, seed=1)
    build_set("stsb", src, tmp_path / "set", n_iter=3, teacher=str(teacher))
    ds = datasets.load_from_disk(str(tmp_path / "set"))
    m = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert m["regression"] and m["counts"]["originals_written"] == 150
    assert ds.features["label"].dtype == "float32"
    gold = np.array(ds.filter(lambda r: r["is_original"])["label"], dtype=np.float32)
    assert np.all((gold >= 0) & (gold <= 5))  # the real 0-5 similarity scores
    samples = ds.filter(lambda r: not r["is_original"])
    assert len(samples) > 150 and np.isnan(np.array(samples["label"], np.float32)).all()
    assert all(len(x) == 1 for x in ds["teacher_logits"])
    # pairs cycle: sample i changes A (i % 3 == 0), B (1) or both (2); the other side is kept
    by_source = {r["source_id"]: r for r in ds if r["is_original"]}
    for r in samples:
        o, i = by_source[r["source_id"]], int(r["id"].rsplit("-", 1)[1])
        if i % 3 == 0:
            assert r["text_b"] == o["text_b"].strip()
        elif i % 3 == 1:
            assert r["text_a"] == o["text_a"].strip()

    # the tiny teacher's scores are noise; let a teacher with a learnable notion of similarity
    # (word overlap of the two sides, 0-5) score the same real rows, and check the student
    # learns it: a student that ignored its inputs or the teacher would sit near 0
    train, _ = load_transfer_set(str(tmp_path / "set"), "stsb")
    scores = [overlap(a, b) for a, b in zip(train["text_a"], train["text_b"], strict=True)]
    train = train.remove_columns("teacher_logits").add_column(
        "teacher_logits", [[s] for s in scores]
    )
    dev = train.filter(lambda r: r["is_original"])
    dev = dev.map(lambda r: {"label": overlap(r["text_a"], r["text_b"])})
    metrics = train_student(
        TrainConfig(
            task="stsb",
            epochs=15,
            patience=15,
            embeddings="random",
            embed_dim=32,
            hidden=32,
            fc=32,
            seed=0,
        ),
        train,
        dev,
        str(tmp_path / "student"),
    )
    assert set(metrics["dev"]) == {"pearson", "spearmanr"}
    adapter, meta = load_model(str(tmp_path / "student"))
    assert adapter.model.cfg.pairs and meta["label_names"] is None
    got = predict(adapter, list(train["text_a"]), list(train["text_b"]))
    assert got.shape == (len(train), 1)
    assert np.corrcoef(got[:, 0], scores)[0, 1] > 0.6
    assert metrics["dev"]["pearson"] > 0.6


def overlap(a: str, b: str) -> float:
    """5 x the Jaccard overlap of the two sides' lower-cased words."""
    x, y = set(a.lower().split()), set(b.lower().split())
    return 5.0 * len(x & y) / max(len(x | y), 1)
