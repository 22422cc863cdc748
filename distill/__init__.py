"""Students and their training, offline from a transfer set's cached logits (no Beam).

``from distill import Student`` serves a trained or exported student (``distill.api``);
``train_student`` / ``TrainConfig`` train one (``distill.train``); ``DistillationTrainer`` trains
any Hugging Face sequence classifier from a transfer set under ``transformers.Trainer``;
``split_by_source`` carves a held-out split without leaking a source's samples.
"""

__all__ = [
    "DistillationCollator",
    "DistillationTrainer",
    "FinetuneConfig",
    "Prediction",
    "Student",
    "TrainConfig",
    "evaluate",
    "finetune_teacher",
    "load_transfer_set",
    "split_by_source",
    "train_student",
]
_WHERE = {  # imported lazily: importing distill.vocab etc. should not load torch
    "DistillationCollator": "distill.hf_trainer",
    "DistillationTrainer": "distill.hf_trainer",
    "FinetuneConfig": "distill.finetune",
    "Prediction": "distill.api",
    "Student": "distill.api",
    "TrainConfig": "distill.train",
    "evaluate": "distill.evaluate",
    "finetune_teacher": "distill.finetune",
    "load_transfer_set": "distill.data",
    "split_by_source": "distill.splits",
    "train_student": "distill.train",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
