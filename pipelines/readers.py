"""Format readers: a file in, ``Example``s and ``DeadLetter``s out, nothing lost.

All IO goes through ``apache_beam.io.filesystems`` so ``gs://`` / ``s3://`` paths work. Each
line is decoded on its own, so one line of bad bytes costs that line only.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

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
    """(1-based line number, raw bytes without the line break); a UTF-8 BOM is dropped.

    ``readline`` works on every file Beam opens, compressed ones (``.gz``, ``.bz2``, ...)
    included: Beam decompresses them by their name."""
    with FileSystems.open(path) as f:
        for number, raw in enumerate(iter(f.readline, b""), start=1):
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


def too_long(name: str, chars: int, max_chars: int) -> str:
    return f"too long: {name} has {chars:,} characters, max_chars={max_chars:,}"


class RowBuilder:
    """Turns one record's fields into an Example, or says why it can't."""

    def __init__(
        self,
        spec: TaskSpec,
        columns: Columns,
        names: list[str] | None,
        source: str,
        max_chars: int | None = None,
    ):
        self.spec = spec
        self.source = source
        self.max_chars = max_chars
        self.a = columns.text_a or spec.text_a
        self.b = columns.text_b or (spec.text_b if not columns.text_a else None)
        if spec.is_pair and not self.b:
            raise ValueError(f"task {spec.name} is a sentence-pair task: give --text-b-column")
        self.label = columns.label or (spec.label if not columns.text_a else None)
        self.id = columns.id or spec.id_column
        if names is not None:
            missing = [c for c in (self.a, self.b) if c and c not in names]
            if missing:
                raise ValueError(
                    f"{source}: columns {missing} not in the header {names[:12]}; is --task "
                    f"{spec.name} right, or name the columns with --text-column / "
                    "--text-b-column"
                )
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
            column = self.a if name == "text_a" else self.b
            if text is None:
                return f"missing {name}: no value in column {column!r}"
            if not isinstance(text, str):
                shown = repr(text)[:40]
                return f"not text: {name} (column {column!r}) is a {type(text).__name__}, {shown}"
            if not text.strip():
                return f"empty {name}"
            if self.max_chars is not None and len(text) > self.max_chars:
                return too_long(name, len(text), self.max_chars)
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


class _Record(NamedTuple):
    """One delimited record: its first line, its text as read, its fields (or why not)."""

    number: int
    text: str
    fields: list[str] | None
    error: str | None


def _records(path: str, delimiter: str, quoting: int) -> Iterator[_Record]:
    """Records, not lines: an RFC 4180 quoted field may hold line breaks (CSV), so the parser
    is given the lines and says where each record ends. A line that is not UTF-8 spoils its
    record only; any field length is read (the row builder refuses long texts). Without
    quoting (TSV, GLUE) a record is a line, split at the delimiter."""
    if quoting == csv.QUOTE_NONE:
        for number, raw in _lines(path):
            text = _decode(path, number, raw)
            if isinstance(text, DeadLetter):
                yield _Record(number, text.raw, None, text.reason)
            else:
                yield _Record(number, text, text.split(delimiter) if text else [], None)
        return
    csv.field_size_limit(sys.maxsize)
    taken: list[str] = []  # the lines of the record being parsed
    bad: list[str] = []  # why some of them are not UTF-8

    def feed() -> Iterator[str]:
        for number, raw in _lines(path):
            text = _decode(path, number, raw)
            if isinstance(text, DeadLetter):
                bad.append(text.reason)
                text = text.raw
            taken.append(text)
            yield text + "\n"

    # strict: a quote left open at the end of the file is an error, not one huge field
    reader = csv.reader(feed(), delimiter=delimiter, quoting=quoting, strict=True)
    first = 1
    while True:
        try:
            fields, error = next(reader), None
        except StopIteration:
            return
        except csv.Error as exc:
            fields, error = None, f"unparseable record: {exc}"
            if "unexpected end of data" in str(exc):
                error = (
                    f"unparseable record: the quote opened on line {first} is never closed "
                    f"({len(taken)} lines to the end of the file)"
                )
        error = bad[0] if bad else error
        yield _Record(first, "\n".join(taken), fields if error is None else None, error)
        first = reader.line_num + 1
        taken.clear()
        bad.clear()


def _delimited(
    path, spec, columns, limit, delimiter, quoting, max_chars
) -> Iterator[Example | DeadLetter]:
    builder = None
    names: list[str] | None = None
    row_index = 0
    for rec in _records(path, delimiter, quoting):
        if limit is not None and row_index >= limit:
            return
        if rec.error is not None:
            if names is not None:
                row_index += 1
            yield DeadLetter(path, rec.number, rec.text, rec.error)
            continue
        fields = rec.fields
        if names is None:
            if spec.headerless_columns and spec.text_a not in fields and not columns.text_a:
                names = list(spec.headerless_columns)  # CoLA train/dev: no header line
            else:
                names = fields
                builder = RowBuilder(spec, columns, names, path, max_chars)
                continue
            builder = RowBuilder(spec, columns, names, path, max_chars)
        row_index += 1
        if not rec.text.strip():
            yield DeadLetter(path, rec.number, rec.text, "empty line")
            continue
        if len(fields) != len(names):
            yield DeadLetter(
                path,
                rec.number,
                rec.text,
                f"ragged line: {len(fields)} fields, the header has {len(names)}",
            )
            continue
        out = builder.build(dict(zip(names, fields, strict=True)), row_index - 1)
        yield (
            out._replace(line_number=rec.number)
            if isinstance(out, Example)
            else DeadLetter(path, rec.number, rec.text, out)
        )


def _jsonl(path, spec, columns, limit, max_chars) -> Iterator[Example | DeadLetter]:
    builder = RowBuilder(spec, columns, None, path, max_chars)
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


def _parquet(path, spec, columns, limit, max_chars) -> Iterator[Example | DeadLetter]:
    import pyarrow.parquet as pq

    with FileSystems.open(path) as f:
        pf = pq.ParquetFile(f)
        builder = RowBuilder(spec, columns, pf.schema_arrow.names, path, max_chars)
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


def _text(path, spec, limit, max_chars) -> Iterator[Example | DeadLetter]:
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
        elif max_chars is not None and len(text) > max_chars:
            yield DeadLetter(path, number, text, too_long("text_a", len(text), max_chars))
        else:
            yield Example(str(row_index - 1), text, None, spec.unlabelled, path, number)


def read_file(
    path: str,
    spec: TaskSpec,
    fmt: str,
    columns: Columns = Columns(),
    limit: int | None = None,
    max_chars: int | None = None,
) -> Iterator[Example | DeadLetter]:
    """Every data row of ``path`` as an ``Example`` or a ``DeadLetter`` (in file order); a
    text over ``max_chars`` characters is a dead letter (``too long``)."""
    if fmt == "glue" or fmt == "tsv":
        # GLUE TSVs are read with no quoting: their sentences contain '"'.
        return _delimited(path, spec, columns, limit, "\t", csv.QUOTE_NONE, max_chars)
    if fmt == "csv":
        return _delimited(path, spec, columns, limit, ",", csv.QUOTE_MINIMAL, max_chars)
    if fmt == "jsonl":
        return _jsonl(path, spec, columns, limit, max_chars)
    if fmt == "parquet":
        return _parquet(path, spec, columns, limit, max_chars)
    if fmt == "text":
        return _text(path, spec, limit, max_chars)
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
