"""Arrow shards that open with ``datasets``: the ``Features`` are the one source of schema truth."""

from __future__ import annotations

import json
import logging
import posixpath
import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from datasets import Features, List, Value

from augment.seeding import stable_hash64
from pipelines.records import pack, row_sort_key, unpack
from pipelines.stages import _Stage
from pipelines.tasks import TaskSpec

logger = logging.getLogger(__name__)
RECORD_BATCH_ROWS = 10_000  # rows per Arrow record batch inside a shard


def features_for(spec: TaskSpec, with_logits: bool) -> Features:
    cols = {
        "id": Value("string"),
        "source_id": Value("string"),
        "text_a": Value("string"),
        "text_b": Value("string"),
        "label": spec.label_feature(),
        "is_original": Value("bool"),
        "ops": Value("string"),
    }
    if with_logits:
        cols["teacher_logits"] = List(Value("float32"))
    return Features(cols)


def shard_name(index: int, num_shards: int) -> str:
    return f"data-{index:05d}-of-{num_shards:05d}.arrow"


def rows_to_table(rows: list, features: Features) -> pa.Table:
    """Rows (``Row`` or ``Row`` + logits) -> a table with the features in its schema metadata."""
    schema = features.arrow_schema
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema.names]
    if len(columns) != len(schema.names):
        raise ValueError(f"rows have {len(columns)} fields, the schema {len(schema.names)}")
    return pa.Table.from_arrays(
        [pa.array(list(col), type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def write_table(table: pa.Table, path: str) -> None:
    with FileSystems.create(path) as f:
        with pa.ipc.new_stream(f, table.schema) as writer:
            writer.write_table(table, max_chunksize=RECORD_BATCH_ROWS)


class _ShardKeyFn(beam.DoFn):
    def __init__(self, num_shards: int):
        self.num_shards = num_shards

    def process(self, rows: list):
        parts: dict[int, list] = {}
        for row in rows:
            parts.setdefault(stable_hash64(row[0]) % self.num_shards, []).append(row)
        for shard, part in parts.items():
            yield shard, pack(part)


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, num_shards: int, features: Features):
        self.directory, self.num_shards, self.features = directory, num_shards, features

    def setup(self):
        self.stage = _Stage("written")

    def process(self, element):
        started = time.perf_counter()
        index, parts = element
        rows = [r for part in parts for r in unpack(part)]
        rows.sort(key=row_sort_key)
        name = shard_name(index, self.num_shards)
        write_table(rows_to_table(rows, self.features), posixpath.join(self.directory, name))
        self.stage.done(len(rows), started)
        yield name, len(rows)


class WriteArrowShards(beam.PTransform):
    """Batches of rows -> ``num_shards`` Arrow IPC stream files in ``directory``.

    A row's shard is a stable hash of its id; rows are sorted by id inside a shard; so the bytes
    depend only on the rows, never on workers, runner or bundle order. Every shard is written,
    empty or not. ``directory`` is a staging folder: the driver moves the files into place only
    after the whole pipeline succeeded.
    """

    def __init__(self, directory: str, num_shards: int, features: Features):
        super().__init__()
        self.directory, self.num_shards, self.features = directory, num_shards, features

    def expand(self, batches):
        keyed = batches | "KeyByShard" >> beam.ParDo(_ShardKeyFn(self.num_shards))
        every = batches.pipeline | "EveryShard" >> beam.Create(
            [(k, pack([])) for k in range(self.num_shards)]
        )
        return (
            (keyed, every)
            | "AllShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(_WriteShardFn(self.directory, self.num_shards, self.features))
        )


class _WriteDeadLettersFn(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, records):
        records = sorted(records, key=lambda r: (r.source, r.line_number, r.raw))
        with FileSystems.create(self.path) as f:
            for r in records:
                f.write((json.dumps(r.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
        yield len(records)


class WriteDeadLetters(beam.PTransform):
    """All dead letters, sorted, as one JSONL file (written even when empty)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, dead):
        return (
            dead
            | "CollectDeadLetters" >> beam.combiners.ToList()
            | "WriteDeadLetterFile" >> beam.ParDo(_WriteDeadLettersFn(self.path))
        )
