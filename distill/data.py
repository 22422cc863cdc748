"""Transfer sets as training data: ``datasets.load_from_disk`` (memory-mapped, no copy; the
training loop reads its batches from the files, ``distill.train.encode_rows``)."""

from __future__ import annotations

from augment.tasks import get_task


def load_transfer_set(path: str, task: str, *, need_logits: bool = True):
    """The shards at ``path``, checked against ``task``; returns ``(dataset, manifest)``."""

    from pipelines.transfer_set import STATE, is_transfer_set, open_set, read_manifest

    if not is_transfer_set(path):
        raise FileNotFoundError(
            f"{path!r} is not a transfer set (no {STATE}, nor Parquet shards with a manifest): "
            "run `transferset build` first"
        )
    ds = open_set(path)
    found = read_manifest(path)
    manifest = found.to_dict() if found else {}
    built_for = manifest.get("task")
    if built_for and get_task(built_for).name != get_task(task).name:
        raise ValueError(f"{path!r} was built for task {built_for!r}, not {task!r}")
    check_labels(ds, task)
    if len(ds) == 0:
        raise ValueError(f"{path!r} holds no rows: nothing to train on")
    if need_logits and "teacher_logits" not in ds.column_names:
        raise ValueError(
            f"{path!r} has no teacher_logits column: rebuild it with --teacher, or "
            "train on gold labels with --loss ce --originals-only"
        )
    return ds, manifest


def check_labels(ds, task: str) -> None:
    """The dataset's label feature must be the task's (names, or a float for regression)."""
    from datasets import ClassLabel

    feature = ds.features.get("label")
    regression = get_task(task).is_regression
    if regression and isinstance(feature, ClassLabel):
        raise ValueError(
            f"task {task!r} is a regression task but the data has class labels {feature.names}"
        )
    if not regression and not isinstance(feature, ClassLabel):
        raise ValueError(f"task {task!r} needs class labels; the data's label is {feature}")


def label_names(ds) -> list[str] | None:
    feature = ds.features["label"]
    return list(feature.names) if hasattr(feature, "names") else None
