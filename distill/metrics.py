"""GLUE metrics, from scikit-learn and scipy (not hand-written)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from augment.tasks import get_task

_METRICS = {
    "accuracy": lambda p, r: accuracy_score(r, p),
    "f1": lambda p, r: f1_score(r, p),
    "matthews_correlation": lambda p, r: matthews_corrcoef(r, p),
    "pearson": lambda p, r: pearsonr(p, r)[0],
    "spearmanr": lambda p, r: spearmanr(p, r)[0],
}


def glue_metrics(task: str, predictions, references) -> dict[str, float]:
    """The task's GLUE metrics (``augment.tasks``). ``predictions``: class ids (or scores for a
    regression task); ``references``: gold labels."""
    spec = get_task(task)
    p, r = np.asarray(predictions), np.asarray(references)
    if len(p) != len(r) or len(r) == 0:
        raise ValueError(f"need as many predictions as references (> 0): {len(p)} vs {len(r)}")
    return {name: float(_METRICS[name](p, r)) for name in spec.metrics}


def main_metric(task: str, metrics: dict[str, float]) -> float:
    """The number that picks epochs; NaN (Pearson of constant predictions) ranks below every
    number, so a NaN first epoch never blocks the later ones."""
    value = metrics[get_task(task).main_metric]
    return -math.inf if math.isnan(value) else value


def score_logits(task: str, logits: np.ndarray, labels) -> dict[str, float]:
    """GLUE metrics of ``(rows, num_labels)`` logits: argmax, or the one output (regression)."""
    preds = logits[:, 0] if logits.shape[1] == 1 else logits.argmax(-1)
    return glue_metrics(task, preds, labels)
