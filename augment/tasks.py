"""The one registry of tasks: names and aliases, where text and labels live, what the labels are
called, regression or not, the GLUE metrics and the headline one, and the "no gold label" value.

Every command and package (``pipelines/`` to read and write, ``distill/`` to train and score)
asks this module; no other module spells a task name. It imports neither Beam nor torch.
Label names and their order are Hugging Face ``datasets``' GLUE ones, so a ClassLabel index
means the same thing here, in ``datasets`` and in a teacher fine-tuned on ``datasets`` GLUE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNLABELLED_CLASS = -1  # the ``datasets`` convention for a row without a gold class
UNLABELLED_SCORE = math.nan  # ... and for a regression row without a gold score


@dataclass(frozen=True)
class TaskSpec:
    name: str
    text_a: str  # header name of the first text column
    text_b: str | None  # header name of the second text column (pair tasks)
    label: str | None  # header name of the gold label (absent from unlabelled test files)
    label_names: tuple[str, ...] | None  # None: regression (float label)
    id_column: str | None = None  # header name of GLUE's idx, where the file has one
    # Files without a header line (CoLA train/dev): the column names, by position.
    headerless_columns: tuple[str, ...] | None = None
    metrics: tuple[str, ...] = ("accuracy",)  # GLUE's metrics for the task
    main_metric: str = "accuracy"  # the one that picks the best epoch (GLUE's headline)
    aliases: tuple[str, ...] = ()  # other names the commands accept (lower case)

    @property
    def unlabelled(self) -> int | float:
        """The label of a row without gold: -1 for classes, NaN for regression."""
        return UNLABELLED_SCORE if self.is_regression else UNLABELLED_CLASS

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    def label_feature(self):
        """The ``datasets`` feature of the label: ClassLabel(names), or float32 (regression)."""
        from datasets import ClassLabel, Value

        if self.label_names is None:
            return Value("float32")
        return ClassLabel(names=list(self.label_names))

    def parse_label(self, value: str) -> int | float:
        """The label index (classification) or float (regression); ValueError if unknown."""
        v = value.strip()
        if self.label_names is None:
            try:
                x = float(v)
            except ValueError:
                raise ValueError(f"unknown label: {value!r} is not a number") from None
            if x != x:
                raise ValueError(f"unknown label: {value!r} is NaN")
            return x
        if v in self.label_names:
            return self.label_names.index(v)
        if v.isdigit() and int(v) < len(self.label_names):
            return int(v)
        raise ValueError(f"unknown label: {value!r}, expected one of {list(self.label_names)}")


def has_gold(labels):
    """Rows with a gold label, for a numpy array or a torch tensor of labels.

    Float labels (regression) have none where NaN; integer labels where negative.
    """
    floating = (
        labels.is_floating_point()
        if hasattr(labels, "is_floating_point")
        else labels.dtype.kind == "f"
    )
    return labels == labels if floating else labels >= 0  # NaN != NaN


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "cola",
            "sentence",
            None,
            "label",
            ("unacceptable", "acceptable"),
            "index",
            headerless_columns=("source", "label", "original_label", "sentence"),
            metrics=("matthews_correlation", "accuracy"),
            main_metric="matthews_correlation",
        ),
        TaskSpec(
            "sst2", "sentence", None, "label", ("negative", "positive"), "index", aliases=("sst-2",)
        ),
        TaskSpec(
            "mrpc",
            "#1 String",
            "#2 String",
            "Quality",
            ("not_equivalent", "equivalent"),
            "index",
            metrics=("f1", "accuracy"),
            main_metric="f1",
        ),
        TaskSpec(
            "qqp",
            "question1",
            "question2",
            "is_duplicate",
            ("not_duplicate", "duplicate"),
            "id",
            metrics=("f1", "accuracy"),
            main_metric="f1",
        ),
        TaskSpec(
            "stsb",
            "sentence1",
            "sentence2",
            "score",
            None,
            "index",
            metrics=("pearson", "spearmanr"),
            main_metric="pearson",
            aliases=("sts-b",),
        ),
        TaskSpec(
            "mnli",
            "sentence1",
            "sentence2",
            "gold_label",
            ("entailment", "neutral", "contradiction"),
            "index",
            # the matched and mismatched dev sets are one task with two dev files
            aliases=("mnli-m", "mnli-mm", "mnli_matched", "mnli_mismatched"),
        ),
        TaskSpec(
            "qnli", "question", "sentence", "label", ("entailment", "not_entailment"), "index"
        ),
        TaskSpec(
            "rte", "sentence1", "sentence2", "label", ("entailment", "not_entailment"), "index"
        ),
        TaskSpec(
            "wnli", "sentence1", "sentence2", "label", ("not_entailment", "entailment"), "index"
        ),
    )
}
ALIASES: dict[str, str] = {alias: t.name for t in TASKS.values() for alias in t.aliases}


def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (any case, or an alias); a ValueError naming the known ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        aliases = ", ".join(sorted(ALIASES))
        raise ValueError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)} (aliases: {aliases})"
        )
    return TASKS[key]
