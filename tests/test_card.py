"""The dataset card the build writes beside a transfer set."""

from __future__ import annotations

import json

import datasets
import pytest
from conftest import FIX, build_set
from huggingface_hub import DatasetCard

from pipelines.card import size_category


def test_the_card_parses_and_says_how_the_set_was_made(tiny_teacher, tmp_path):
    out = tmp_path / "set"
    build_set("sst2", FIX / "sst2_train.tsv", out, n_iter=3, seed=7, teacher=str(tiny_teacher))
    m = json.loads((out / "manifest.json").read_text())
    card = DatasetCard.load(out / "README.md")  # the Hugging Face parser
    data = card.data.to_dict()
    assert data["annotations_creators"] == ["machine-generated"]
    assert data["language"] == ["en"] and data["task_categories"] == ["text-classification"]
    assert data["size_categories"] == [size_category(m["counts"]["written"])]
    assert data["source_datasets"] == ["extended|glue"] and data["pretty_name"]
    assert "knowledge-distillation" in data["tags"]
    body = card.text
    assert "--seed 7" in body and m["command"] in body
    assert m["teacher"]["weights_sha256"] in body and m["spacy_model"] in body
    assert '"negative"' in body and "max length 128" in body
    assert f"| written | {m['counts']['written']:,} |" in body
    assert "tang2019distilling" in body and "wang2019glue" in body
    # the card changes nothing for loaders: load_from_disk works, load_dataset is refused by
    # datasets for this layout (the card and the README say what to call instead)
    assert len(datasets.load_from_disk(str(out))) == m["counts"]["written"]
    with pytest.raises(ValueError, match="load_from_disk"):
        datasets.load_dataset(str(out))


def test_a_regression_set_without_teacher_has_a_card_too(tmp_path):
    out = tmp_path / "stsb"
    build_set("stsb", FIX / "stsb_dev.tsv", out, n_iter=2)
    data = DatasetCard.load(out / "README.md").data.to_dict()
    assert data["task_ids"] == ["semantic-similarity-scoring"]
    assert "without teacher logits" in (out / "README.md").read_text()
    assert size_category(999) == "n<1K" and size_category(1_000) == "1K<n<10K"
    assert size_category(5_000_000) == "1M<n<10M"
