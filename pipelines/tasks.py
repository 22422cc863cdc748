"""One registry of task specs: where the text and label live, and what the labels are called.

Label names and their order are Hugging Face ``datasets``' GLUE ones, so a ClassLabel index
means the same thing here, in ``datasets`` and in a teacher fine-tuned on ``datasets`` GLUE.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        ),
        TaskSpec("sst2", "sentence", None, "label", ("negative", "positive"), "index"),
        TaskSpec(
            "mrpc", "#1 String", "#2 String", "Quality", ("not_equivalent", "equivalent"), "index"
        ),
        TaskSpec(
            "qqp", "question1", "question2", "is_duplicate", ("not_duplicate", "duplicate"), "id"
        ),
        TaskSpec("stsb", "sentence1", "sentence2", "score", None, "index"),
        TaskSpec(
            "mnli",
            "sentence1",
            "sentence2",
            "gold_label",
            ("entailment", "neutral", "contradiction"),
            "index",
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
ALIASES = {
    "sst-2": "sst2",
    "sts-b": "stsb",
    "mnli-mm": "mnli",
    "mnli_matched": "mnli",
    "mnli_mismatched": "mnli",
}


def get_task(name: str) -> TaskSpec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[key]
