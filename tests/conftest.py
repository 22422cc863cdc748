"""Shared fixtures. Tests are hermetic: no network, hub access switched off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    if not GLUE.exists():
        pytest.skip(f"{GLUE} is absent: the real GLUE files live in ../shared/data/glue")
    return GLUE


@pytest.fixture(scope="session")
def nlp():
    from augment import load_tagger

    return load_tagger()


def make_tiny_teacher(
    path: Path, labels: tuple[str, ...] | None = ("negative", "positive"), seed: int = 0
) -> Path:
    """A 2-layer, 32-wide BERT classifier with a local WordPiece vocabulary (no hub).

    ``labels=None`` makes a one-output regression head.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    words = ["the", "a", "film", "movie", "good", "bad", "is", "it", "and", "of", "'s", "not"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,!?'\"-;:()", *letters, *words]
    vocab += [f"##{c}" for c in letters]
    vocab = list(dict.fromkeys(vocab))  # "a" is a letter and a word
    # transformers 5 ignores ``vocab_file=`` (a 5-token tokenizer: every word [UNK]); the
    # vocabulary goes in as a dict
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    assert len(tokenizer) == len(vocab)
    tokenizer.save_pretrained(path)
    names = labels or ("score",)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        problem_type="regression" if labels is None else "single_label_classification",
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    return make_tiny_teacher(tmp_path_factory.mktemp("teacher") / "tiny")


FIX = Path(__file__).parent / "fixtures" / "glue"


def build_set(task: str, src, out, **settings):
    """``build_transfer_set`` of ``src`` into ``out`` with ``BuildOptions`` ``settings``."""
    from pipelines import BuildOptions, build_transfer_set

    return build_transfer_set(BuildOptions(task=task, out=str(out), input=str(src), **settings))


def head(src: Path, dst: Path, n: int) -> Path:
    """The header and first ``n`` rows of a TSV (real GLUE excerpts for tests)."""
    with open(src, "rb") as f:
        lines = f.readlines()[: n + 1]
    dst.write_bytes(b"".join(lines))
    return dst
