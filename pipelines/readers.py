"""Format readers: a file in, ``Example``s and ``DeadLetter``s out, nothing lost.

All IO goes through ``apache_beam.io.filesystems`` so ``gs://`` / ``s3://`` paths work. Each
line is decoded on its own, so one line of bad bytes costs that line only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from augment.tasks import TaskSpec
from pipelines.records import DeadLetter, Example

FORMATS = ("glue", "tsv", "csv", "jsonl", "parquet", "text")


@dataclass(frozen=True)
class Columns:
    """Where the fields are in a generic (non-GLUE) file; defaults come from the task spec."""

    text_a: str | None = None
    text_b: str | None = None
    label: str | None = None
    id: str | None = None


def detect_format(path: str, columns: Columns) -> str:
    lower = path.lower()
    for ext, fmt in (
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".txt", "text"),
    ):
        if lower.endswith(ext):
            return fmt
    return "tsv" if columns.text_a else "glue"


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw bytes without the line break); a UTF-8 BOM is dropped."""
    with FileSystems.open(path) as f:
        for number, raw in enumerate(io.BufferedReader(f), start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield number, raw.rstrip(b"\r\n")


def _decode(path: str, number: int, raw: bytes) -> str | DeadLetter:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DeadLetter(
            path,
            number,
            raw.decode("utf-8", "backslashreplace"),
            f"not UTF-8: {exc.reason} at byte {exc.start}",
        )


class _RowBuilder:
    """Turns one record's fields into an Example, or says why it can't."""

    def __init__(self, spec: TaskSpec, columns: Columns, names: list[str] | None, source: str):
        self.spec = spec
        self.source = source
        self.a = columns.text_a or spec.text_a
        self.b = columns.text_b or (spec.text_b if not columns.text_a else None)
        if spec.is_pair and not self.b:
            raise ValueError(f"task {spec.name} is a sentence-pair task: give --text-b-column")
        self.label = columns.label or (spec.label if not columns.text_a else None)
        self.id = columns.id or spec.id_column
        if names is not None:
            missing = [c for c in (self.a, self.b) if c and c not in names]
            if missing:
                raise ValueError(f"columns {missing} not in the header {names}")
            if self.label and self.label not in names:
                self.label = None  # an unlabelled split (GLUE test files)
            if self.id and self.id not in names:
                self.id = None

    def build(self, record: dict, row_index: int) -> Example | str:
        text_a = record.get(self.a)
        text_b = record.get(self.b) if self.b else None
        for name, text in (("text_a", text_a), ("text_b", text_b)):
            if name == "text_b" and not self.b:
                continue
            if text is None or not isinstance(text, str):
                return (
                    f"missing {name}: no value in column {self.a if name == 'text_a' else self.b!r}"
                )
            if not text.strip():
                return f"empty {name}"
        label: int | float = self.spec.unlabelled
        if self.label:
            value = record.get(self.label)
            if value is None:
                return f"missing label: no value in column {self.label!r}"
            try:
                label = self.spec.parse_label(str(value))
            except ValueError as exc:
                return str(exc)
        source_id = str(record[self.id]) if self.id and record.get(self.id) is not None else None
        return Example(source_id or str(row_index), text_a, text_b, label, self.source, 0)


def _delimited(path, spec, columns, limit, delimiter, quoting) -> Iterator[Example | DeadLetter]:
    builder = None
    names: list[str] | None = None
    row_index = 0
    for number, raw in _lines(path):
        if limit is not None and row_index >= limit:
            return
        text = _decode(path, number, raw)
        if isinstance(text, DeadLetter):
            if names is not None:
                row_index += 1
            yield text
            continue
        fields = next(csv.reader([text], delimiter=delimiter, quoting=quoting)) if text else []
        if names is None:
            if spec.headerless_columns and spec.text_a not in fields and not columns.text_a:
                names = list(spec.headerless_columns)  # CoLA train/dev: no header line
            else:
                names = fields
                builder = _RowBuilder(spec, columns, names, path)
                continue
            builder = _RowBuilder(spec, columns, names, path)
        if not text.strip():
            row_index += 1
            yield DeadLetter(path, number, text, "empty line")
            continue
        if len(fields) != len(names):
            row_index += 1
            yield DeadLetter(
                path,
                number,
                text,
                f"ragged line: {len(fields)} fields, the header has {len(names)}",
            )
            continue
        out = builder.build(dict(zip(names, fields, strict=True)), row_index)
        row_index += 1
        yield (
            out._replace(line_number=number)
            if isinstance(out, Example)
            else DeadLetter(path, number, text, out)
        )


def _jsonl(path, spec, columns, limit) -> Iterator[Example | DeadLetter]:
    builder = _RowBuilder(spec, columns, None, path)
    row_index = 0
    for number, raw in _lines(path):
        if limit is not None and row_index >= limit:
            return
        if not raw.strip():
            continue  # blank lines are not records in JSON Lines
        row_index += 1
        text = _decode(path, number, raw)
        if isinstance(text, DeadLetter):
            yield text
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield DeadLetter(
                path, number, text, f"unparseable JSON: {exc.msg} at column {exc.colno}"
            )
            continue
        if not isinstance(record, dict):
            yield DeadLetter(path, number, text, "unparseable JSON: a line must be an object")
            continue
        out = builder.build(record, row_index - 1)
        yield (
            out._replace(line_number=number)
            if isinstance(out, Example)
            else DeadLetter(path, number, text, out)
        )


def _parquet(path, spec, columns, limit) -> Iterator[Example | DeadLetter]:
    import pyarrow.parquet as pq

    with FileSystems.open(path) as f:
        pf = pq.ParquetFile(f)
        builder = _RowBuilder(spec, columns, pf.schema_arrow.names, path)
        i = 0
        for batch in pf.iter_batches(batch_size=10_000):  # one batch in memory, not the file
            for record in batch.to_pylist():
                if limit is not None and i >= limit:
                    return
                out = builder.build(record, i)
                i += 1
                yield (
                    out._replace(line_number=i)
                    if isinstance(out, Example)
                    else DeadLetter(
                        path, i, json.dumps(record, ensure_ascii=False, default=str), out
                    )
                )


def _text(path, spec, limit) -> Iterator[Example | DeadLetter]:
    if spec.is_pair:
        raise ValueError(f"plain text has one sentence per line; task {spec.name} needs pairs")
    row_index = 0
    for number, raw in _lines(path):
        if limit is not None and row_index >= limit:
            return
        row_index += 1
        text = _decode(path, number, raw)
        if isinstance(text, DeadLetter):
            yield text
        elif not text.strip():
            yield DeadLetter(path, number, text, "empty text_a")
        else:
            yield Example(str(row_index - 1), text, None, spec.unlabelled, path, number)


def read_file(
    path: str, spec: TaskSpec, fmt: str, columns: Columns = Columns(), limit: int | None = None
) -> Iterator[Example | DeadLetter]:
    """Every data row of ``path`` as an ``Example`` or a ``DeadLetter`` (in file order)."""
    if fmt == "glue" or fmt == "tsv":
        # GLUE TSVs are read with no quoting: their sentences contain '"'.
        return _delimited(path, spec, columns, limit, "\t", csv.QUOTE_NONE)
    if fmt == "csv":
        return _delimited(path, spec, columns, limit, ",", csv.QUOTE_MINIMAL)
    if fmt == "jsonl":
        return _jsonl(path, spec, columns, limit)
    if fmt == "parquet":
        return _parquet(path, spec, columns, limit)
    if fmt == "text":
        return _text(path, spec, limit)
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


def read_examples(
    path: str,
    spec: TaskSpec,
    fmt: str | None = None,
    columns: Columns = Columns(),
    limit: int | None = None,
):
    """A labelled file as a ``datasets.Dataset`` (text_a, text_b, label), outside Beam.

    For training and evaluation inputs (``finetune-teacher``, ``evaluate``); rows that can't
    be read are logged and skipped (the build's dead-letter accounting is the Beam path).
    """
    import logging

    from datasets import Dataset, Features, Value

    fmt = fmt or detect_format(path, columns)
    rows, dead = [], []
    for item in read_file(path, spec, fmt, columns, limit):
        (dead if isinstance(item, DeadLetter) else rows).append(item)
    for d in dead[:5]:
        logging.getLogger(__name__).warning("skipped %s:%d: %s", d.source, d.line_number, d.reason)
    if dead:
        logging.getLogger(__name__).warning("skipped %d unreadable rows of %s", len(dead), path)
    features = Features(
        {
            "source_id": Value("string"),
            "text_a": Value("string"),
            "text_b": Value("string"),
            "label": spec.label_feature(),
        }
    )
    return Dataset.from_dict(
        {
            "source_id": [r.source_id for r in rows],
            "text_a": [r.text_a for r in rows],
            "text_b": [r.text_b for r in rows],
            "label": [r.label for r in rows],
        },
        features=features,
    )
