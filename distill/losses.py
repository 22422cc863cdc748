"""Distillation losses as pure tensor functions, and one name -> function map.

Shapes: ``student`` and ``teacher`` logits ``(batch, num_labels)``; ``labels`` ``(batch,)``.
Weights (``alpha``, temperature) live in the training config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augment.tasks import has_gold


def mse(student: torch.Tensor, teacher: torch.Tensor, **_) -> torch.Tensor:
    """Tang et al.: mean squared error between logits (also the regression soft loss)."""
    return F.mse_loss(student, teacher)


def kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0, **_) -> torch.Tensor:
    """Hinton et al.: KL(teacher_T || student_T), scaled by T^2 to keep gradients comparable."""
    t = temperature
    return F.kl_div(
        F.log_softmax(student / t, dim=-1),
        F.log_softmax(teacher / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)


def ce(student: torch.Tensor, labels: torch.Tensor, **_) -> torch.Tensor:
    """Cross-entropy on gold labels (MSE on the score for regression)."""
    if student.shape[-1] == 1:
        return F.mse_loss(student[:, 0], labels.float())
    return F.cross_entropy(student, labels.long())


SOFT_LOSSES = {"mse": mse, "kl": kl}
LOSSES = {"mse": mse, "kl": kl, "ce": ce}


def labelled(labels: torch.Tensor) -> torch.Tensor:
    """Rows with a gold label (``augment.tasks.has_gold``: -1 and NaN mean none)."""
    return has_gold(labels)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    loss: str = "mse",
    alpha: float = 0.0,
    temperature: float = 2.0,
) -> torch.Tensor:
    """``alpha * hard + (1 - alpha) * soft``; ``loss="ce"`` is the hard term alone.

    The hard term covers the rows with a gold label (originals); augmented rows add only the
    soft term. Regression students (one output) use MSE for both terms.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; one of {sorted(LOSSES)}")
    has = labelled(labels)
    hard = ce(student[has], labels[has]) if bool(has.any()) else None
    if loss == "ce":
        if hard is None:
            raise ValueError("loss 'ce' needs rows with gold labels")
        return hard
    if teacher is None:
        raise ValueError(f"loss {loss!r} needs teacher logits")
    soft_fn = mse if student.shape[-1] == 1 else SOFT_LOSSES[loss]
    soft = soft_fn(student, teacher, temperature=temperature)
    if alpha == 0.0:
        return soft
    if hard is None:  # a batch of augmented rows only: the soft term keeps its own weight
        return (1.0 - alpha) * soft
    return alpha * hard + (1.0 - alpha) * soft
