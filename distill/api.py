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
    """What ``Student.predict`` returns, one row per input text (pair), in input order."""

    logits: np.ndarray  # (rows, labels) float32; regression: (rows, 1)
    labels: list[str] | None  # the argmax label's name per row; None for regression
    scores: np.ndarray | None  # regression: the predicted score per row; None otherwise

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the logits, ``(rows, labels)``; None for regression."""
        if self.labels is None:
            return None
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class Student:
    """A trained student (``train-student --out``) or an exported one (``transferset export``,
    run by ONNX Runtime), behind one ``predict``."""

    def __init__(self, adapter, meta: dict):
        self.adapter, self.meta = adapter, meta
        from distill.export import label_names

        self.label_names: list[str] | None = label_names(adapter, meta)
        self.task: str | None = meta.get("task")
        self.kind: str = meta.get("kind", "transformers")
        self.path: str | None = meta.get("path")

    def __repr__(self) -> str:
        labels = "regression" if self.label_names is None else f"labels={self.label_names}"
        pairs = {True: ", pairs", False: ", single sentences", None: ""}[self.is_pair]
        where = f", path={self.path!r}" if self.path else ""
        return f"Student(task={self.task!r}, kind={self.kind!r}, {labels}{pairs}{where})"

    @property
    def is_pair(self) -> bool | None:
        """Whether the student reads sentence pairs (its task's); None when it does not say."""
        if not self.task:
            return None
        from augment.tasks import get_task

        return get_task(self.task).is_pair

    @classmethod
    def load(cls, path: str, *, threads: int | None = None, quantize: bool = False) -> Student:
        """``quantize``: dynamic int8 LSTM and linear layers (torch), for a trained folder; an
        export is quantized when exported (``--quantize``)."""
        import torch

        if threads:
            torch.set_num_threads(threads)
        adapter, meta = load_model(path, threads=threads)
        meta = meta | {"path": path}
        if quantize:
            adapter = adapter.quantized()
            meta = meta | {"kind": f"{meta.get('kind', 'transformers')}-int8"}
        return cls(adapter, meta)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    def predict(self, texts, texts_b=None, *, batch_size: int | None = None) -> Prediction:
        """Logits, label names (or scores) of ``texts`` (a list, tuple or numpy array of
        strings), with ``texts_b`` the second sentences for a pair task's student."""
        from distill.students import predict

        if isinstance(texts, str) or (texts_b is not None and isinstance(texts_b, str)):
            raise TypeError("predict takes lists of texts; wrap a single text in a list")
        texts = _strings(texts, "texts")
        if texts_b is not None and self.is_pair is False:
            raise ValueError(
                f"this student reads single sentences ({self.task}): texts_b would be ignored"
            )
        if texts_b is None and self.is_pair:
            raise ValueError(f"this student reads sentence pairs ({self.task}): give texts_b")
        if texts_b is not None:
            texts_b = _strings(texts_b, "texts_b")
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


def _strings(texts, name: str) -> list[str]:
    """A list of Python strings from a list, tuple, generator or numpy array of strings."""
    out = [t.item() if isinstance(t, np.generic) else t for t in (
        texts.tolist() if isinstance(texts, np.ndarray) else texts
    )]  # fmt: skip
    bad = next((t for t in out if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must be strings, got a {type(bad).__name__}: {bad!r}")
    return out


def load_model(path: str, *, threads: int | None = None, allow_pickle: bool = False):
    """What a folder holds, behind the adapter protocol (``distill.students.StudentAdapter``):
    an export (``transferset export``: ONNX Runtime), a trained student, or any local HF
    sequence classifier. Returns ``(adapter, meta)``."""
    import os

    from distill.export import EXPORT_FILE, OnnxAdapter
    from distill.students import load_trained

    if os.path.exists(os.path.join(path, EXPORT_FILE)):
        adapter = OnnxAdapter(path, threads=threads)
        info = adapter.info
        return adapter, {"task": info["task"], "label_names": info["label_names"]} | {
            "kind": f"{info['kind']}-onnx" + ("-int8" if info["quantized"] else "")
        }
    return load_trained(path, allow_pickle=allow_pickle)
