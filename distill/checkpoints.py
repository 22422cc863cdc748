"""Local ``transformers`` checkpoints, loaded safely: safetensors, or a pickle ``.bin`` only
when the caller says it trusts it (unpickling can run arbitrary code)."""

from __future__ import annotations

import os

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def weights_file(path: str, allow_pickle: bool = False, role: str = "teacher") -> str:
    """The checkpoint's weights file; a pickle checkpoint is refused unless allowed."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{role} {path!r}: no such folder (a local checkpoint is needed)")
    for name in WEIGHTS:
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    for name in PICKLES:
        if os.path.exists(os.path.join(path, name)):
            if allow_pickle:
                return os.path.join(path, name)
            raise ValueError(
                f"{role} {path!r} has only a pickle checkpoint ({name}); loading it can run "
                "arbitrary code. Convert it to safetensors, or pass --allow-pickle if you trust it"
            )
    raise FileNotFoundError(f"{role} {path!r}: no model.safetensors (or pytorch_model.bin)")


def load_classifier(path: str, *, allow_pickle: bool = False, role: str = "model", **kwargs):
    """``AutoModelForSequenceClassification.from_pretrained`` behind ``weights_file``'s check."""
    from transformers import AutoModelForSequenceClassification

    weights = weights_file(path, allow_pickle, role)
    return AutoModelForSequenceClassification.from_pretrained(
        path, use_safetensors=not weights.endswith(PICKLES), **kwargs
    )
