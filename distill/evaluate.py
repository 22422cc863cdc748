"""``transferset evaluate``: GLUE metrics of a saved model, and its CPU sentences/s."""

from __future__ import annotations

import time

import torch

from distill.api import load_model
from distill.checkpoints import label_order
from distill.data import check_labels, label_names
from distill.export import label_names as model_label_names
from distill.metrics import score_logits
from distill.students import predict


def evaluate(
    model_dir: str,
    task: str,
    ds,
    *,
    threads: int | None = None,
    batch_size: int | None = None,
    allow_pickle: bool = False,
) -> dict:
    """Metrics on ``ds`` and the time to score it from raw text (tokenisation included).

    Two passes over the data are timed: the first pays one-time costs (spaCy's tokenizer
    cache, torch's allocator), the second is the steady state a long-running service sees;
    ``cpu_sentences_per_second`` is the second, the first is reported beside it.
    """
    if len(ds) == 0:
        raise ValueError("the evaluation data is empty")
    check_labels(ds, task)
    if threads:
        torch.set_num_threads(threads)
    adapter, meta = load_model(model_dir, threads=threads, allow_pickle=allow_pickle)
    # the build's rule: the model's own label names (a plain checkpoint's id2label) are
    # matched to the task's and its logits reordered; a mismatch is an error, never a score
    names = model_label_names(adapter, meta)
    perm = label_order(
        dict(enumerate(names or ["score"])), label_names(ds), role=f"model {model_dir!r}"
    )
    texts_a = list(ds["text_a"])
    texts_b = list(ds["text_b"]) if ds["text_b"][0] is not None else None
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        logits = predict(adapter, texts_a, texts_b, batch_size=batch_size)[:, perm]
        seconds.append(time.perf_counter() - started)
    return {
        "model": model_dir,
        "kind": meta.get("kind", "transformers"),
        "task": task,
        "rows": len(ds),
        "metrics": score_logits(task, logits, list(ds["label"])),
        "logit_order": perm,
        "parameters": adapter.num_parameters(),
        "cpu_sentences_per_second": round(len(ds) / seconds[1], 1),
        "cpu_sentences_per_second_first_pass": round(len(ds) / seconds[0], 1),
        "threads": torch.get_num_threads(),
    }
