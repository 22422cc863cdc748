"""Serving a student from Python: ``Student.load(path).predict(texts)``.

    >>> from distill import Student
    >>> student = Student.load("data/quality/best-bilstm")     # or an `transferset export` folder
    >>> out = student.predict(["a gorgeous, witty film", "tedious and overlong"])
    >>> out.labels, out.logits.shape
    (['positive', 'negative'], (2, 2))

Texts are tokenised exactly as in training (spaCy's tokenizer, the set's mask token); batches
are sorted by length; results come back in input order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    logits: np.ndarray  # (rows, labels) float32; regression: (rows, 1)
    labels: list[str] | None  # the argmax label's name per row; None for regression
    scores: np.ndarray | None  # regression: the predicted score per row; None otherwise


class Student:
    """A trained student (``train-student --out``) or an exported one (``transferset export``,
    run by ONNX Runtime), behind one ``predict``."""

    def __init__(self, adapter, meta: dict):
        self.adapter, self.meta = adapter, meta
        from distill.export import label_names

        self.label_names: list[str] | None = label_names(adapter, meta)
        self.task: str | None = meta.get("task")
        self.kind: str = meta.get("kind", "transformers")

    @classmethod
    def load(cls, path: str, *, threads: int | None = None, quantize: bool = False) -> Student:
        """``quantize``: dynamic int8 LSTM and linear layers (torch), for a trained folder; an
        export is quantized when exported (``--quantize``)."""
        import torch

        from distill.students import load_model

        if threads:
            torch.set_num_threads(threads)
        adapter, meta = load_model(path, threads=threads)
        if quantize:
            if adapter.model is None:
                raise ValueError(
                    f"{path!r} is an ONNX export: quantize it with `transferset export --quantize`"
                )
            adapter.model = quantize_dynamic(adapter.model)
            meta = meta | {"kind": f"{meta.get('kind', 'transformers')}-int8"}
        return cls(adapter, meta)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    def predict(self, texts, texts_b=None, *, batch_size: int | None = None) -> Prediction:
        from distill.students import predict

        if isinstance(texts, str) or (texts_b is not None and isinstance(texts_b, str)):
            raise TypeError("predict takes lists of texts; wrap a single text in a list")
        texts = list(texts)
        if texts_b is not None:
            texts_b = list(texts_b)
            if len(texts_b) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(texts_b)} second texts")
        if not texts:
            width = len(self.label_names) if self.label_names else 1
            return Prediction(
                np.zeros((0, width), np.float32), None if self.is_regression else [], None
            )
        logits = predict(self.adapter, texts, texts_b, batch_size=batch_size)
        if self.label_names is None:
            return Prediction(logits, None, logits[:, 0].copy())
        names = self.label_names
        return Prediction(logits, [names[i] for i in logits.argmax(axis=1)], None)


def quantize_dynamic(model):
    """int8 weights for the LSTM and linear layers, activations quantized on the fly."""
    import torch
    from torch import nn

    return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)
