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
