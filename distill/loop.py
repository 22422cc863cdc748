"""The epoch skeleton that ``train-student`` and ``finetune-teacher`` share: batches, steps,
a progress bar with the running loss, the dev score, one history record per epoch."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from distill.progress import progress


def run_epochs(
    name: str,
    first: int,
    last: int,
    batches: Callable[[int], Sequence],
    step: Callable[[np.ndarray], float | None],
    evaluate: Callable[[], dict],
    after: Callable[[dict], bool],
) -> None:
    """Epochs ``first..last``: ``batches(epoch)`` gives the epoch's index batches, ``step(idx)``
    trains on one and returns its loss (``None``: the step budget is spent, end the epoch),
    ``evaluate()`` scores dev; ``after(record)`` gets ``{epoch, train_loss, dev, seconds}`` and
    returns whether to go on (best-epoch tracking, checkpoints and patience are the caller's)."""
    for epoch in range(first, last + 1):
        started, losses = time.time(), []
        bar = progress(batches(epoch), f"{name} epoch {epoch}/{last}")
        for idx in bar:
            loss = step(idx)
            if loss is None:
                break
            losses.append(loss)
            if len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else None,
            "dev": evaluate(),
            "seconds": round(time.time() - started, 1),
        }
        if not after(record):
            break
