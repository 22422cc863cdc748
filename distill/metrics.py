"""GLUE metrics, from scikit-learn and scipy (not hand-written)."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

# the metric that picks the best epoch, per task (GLUE's headline metric)
MAIN_METRIC = {
    "cola": "matthews_correlation",
    "sst2": "accuracy",
    "mrpc": "f1",
    "qqp": "f1",
    "stsb": "pearson",
    "mnli": "accuracy",
    "qnli": "accuracy",
    "rte": "accuracy",
    "wnli": "accuracy",
}
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb"}


def task_key(task: str) -> str:
    key = _ALIASES.get(task.lower(), task.lower())
    if key not in MAIN_METRIC:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(sorted(MAIN_METRIC))}")
    return key


def glue_metrics(task: str, predictions, references) -> dict[str, float]:
    """``predictions``: class ids (or floats for STS-B); ``references``: gold labels."""
    task = task_key(task)
    p, r = np.asarray(predictions), np.asarray(references)
    if len(p) != len(r) or len(r) == 0:
        raise ValueError(f"need as many predictions as references (> 0): {len(p)} vs {len(r)}")
    if task == "stsb":
        return {"pearson": float(pearsonr(p, r)[0]), "spearmanr": float(spearmanr(p, r)[0])}
    out = {"accuracy": float(accuracy_score(r, p))}
    if task in ("mrpc", "qqp"):
        out["f1"] = float(f1_score(r, p))
    if task == "cola":
        out["matthews_correlation"] = float(matthews_corrcoef(r, p))
    return out


def main_metric(task: str, metrics: dict[str, float]) -> float:
    return metrics[MAIN_METRIC[task_key(task)]]


def score_logits(task: str, logits: np.ndarray, labels) -> dict[str, float]:
    """GLUE metrics of ``(rows, num_labels)`` logits: argmax, or the one output (regression)."""
    preds = logits[:, 0] if logits.shape[1] == 1 else logits.argmax(-1)
    return glue_metrics(task, preds, labels)
