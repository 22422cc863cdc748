"""Arrow shards that open with ``datasets``: the ``Features`` are the one source of schema truth."""

from __future__ import annotations

import heapq
import json
import logging
import math
import posixpath
import time
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from datasets import Features, List, Value

from augment.seeding import stable_hash64
from augment.tasks import TaskSpec
from pipelines import exchange
from pipelines.exchange import Spilled, emit_later
from pipelines.meter import StageMeter
from pipelines.records import sort_indices
from pipelines.stages import CountRows
from pipelines.transfer_set import shard_name

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


def shard_count(rows: int, num_shards: int | None, max_shard_rows: int) -> int:
    """``--num-shards`` when given, else enough shards of at most ``max_shard_rows`` rows."""
    return num_shards or max(1, math.ceil(rows / max_shard_rows))


def sort_table(table: pa.Table) -> pa.Table:
    """Rows in natural id order (``records.row_sort_key``): sort indices, then one ``take``."""
    cols = table.select(["id", "source_id", "is_original"]).to_pydict()
    order = sort_indices(cols["id"], cols["source_id"], cols["is_original"])
    return table.take(pa.array(order, type=pa.int64()))


def shard_of(ids: list[str], num_shards: int) -> np.ndarray:
    return np.fromiter((stable_hash64(i) % num_shards for i in ids), np.int64, count=len(ids))


def write_table(table: pa.Table, path: str, features: Features | None = None) -> None:
    """One shard: an Arrow IPC stream, or (``.parquet``) a Parquet file whose schema metadata
    carries the ``datasets`` Features, as ``Dataset.to_parquet`` writes them."""
    if not path.endswith(".parquet"):
        exchange.write_table(path, table, max_chunksize=RECORD_BATCH_ROWS)
        return
    import pyarrow.parquet as pq

    meta = {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}
    with FileSystems.create(path) as f:
        pq.write_table(table.replace_schema_metadata(meta), f, row_group_size=RECORD_BATCH_ROWS)


class _SplitFn(beam.DoFn):
    """A rows file -> one spill file per shard its rows hash to."""

    def __init__(self, work: str):
        self.work = work

    def process(self, handle: Spilled, num_shards: int):
        table = exchange.read_table(handle.path)
        if table.num_rows == 0:
            return
        shard = shard_of(table.column("id").to_pylist(), num_shards)
        for k in np.unique(shard).tolist():
            part = table.take(np.flatnonzero(shard == k))
            yield k, exchange.spill_table(self.work, f"shard-{k:05d}", part)


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, features: Features, shard_format: str):
        self.directory, self.features, self.shard_format = directory, features, shard_format
        self.schema = features.arrow_schema

    def setup(self):
        self.stage = StageMeter("written")
        self.held = beam.metrics.Metrics.distribution("transferset", "shard_rows_held")

    def process(self, element, num_shards: int):
        started = time.perf_counter()
        index, handles = element
        paths = [h.path for h in handles if h is not None]
        table = sort_table(exchange.read_tables(paths, self.schema))
        self.held.update(table.num_rows)
        name = shard_name(index, num_shards, self.shard_format)
        write_table(table, posixpath.join(self.directory, name), self.features)
        self.stage.done(table.num_rows, started)
        yield name, table.num_rows


class WriteArrowShards(beam.PTransform):
    """Rows-file handles -> Arrow IPC stream shards in ``directory``.

    A row's shard is a stable hash of its id; rows are sorted by id inside a shard; so the bytes
    depend only on the rows, never on workers, runner or bundle order. The shard count is
    ``num_shards``, or follows the row count (``max_shard_rows`` each at most). Every shard is
    written, empty or not; a worker holds one shard at a time. ``directory`` is a staging
    folder: the driver moves it into place only after the whole pipeline succeeded.
    """

    def __init__(
        self,
        directory: str,
        features: Features,
        work: str,
        num_shards: int | None,
        max_shard_rows: int,
        shard_format: str = "arrow",
    ):
        super().__init__()
        self.directory, self.features, self.work = directory, features, work
        self.num_shards, self.max_shard_rows = num_shards, max_shard_rows
        self.shard_format = shard_format

    def expand(self, handles):
        n, cap = self.num_shards, self.max_shard_rows
        count = (
            handles
            | "CountRows" >> CountRows()
            | "ShardCount" >> beam.Map(lambda rows: shard_count(rows, n, cap))
        )
        num_shards = beam.pvalue.AsSingleton(count)
        keyed = handles | "SplitByShard" >> beam.ParDo(_SplitFn(self.work), num_shards=num_shards)
        every = count | "EveryShard" >> beam.FlatMap(lambda k: [(i, None) for i in range(k)])
        return (
            (keyed, every)
            | "AllShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(
                _WriteShardFn(self.directory, self.features, self.shard_format),
                num_shards=num_shards,
            )
        )


def _dead_key(r: dict) -> tuple:
    return r["source"], r["line_number"], r["raw"]


class _DeadLetterPartsFn(beam.DoFn):
    """Dead letters of one bundle -> one sorted JSONL part file (its path)."""

    def __init__(self, work: str):
        self.work = work

    def start_bundle(self):
        self.records = []

    def process(self, record):
        self.records.append(record.to_dict())

    def finish_bundle(self):
        if not self.records:
            return
        self.records.sort(key=_dead_key)
        path = exchange.new_path(self.work, "dead", ".jsonl")
        with FileSystems.create(path) as f:
            for r in self.records:
                f.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
        yield emit_later(path)
        self.records = []


def _lines(path: str):
    with FileSystems.open(path) as f:
        for line in f:
            yield json.loads(line)


class _MergeDeadLettersFn(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, parts):
        reasons: Counter = Counter()
        with FileSystems.create(self.path) as f:
            for r in heapq.merge(*(_lines(p) for p in sorted(parts)), key=_dead_key):
                f.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
                reasons[r["reason"].split(":")[0]] += 1
        yield dict(sorted(reasons.items()))


class WriteDeadLetters(beam.PTransform):
    """All dead letters, sorted, as one JSONL file (written even when empty); returns one
    element, the count of each reason (the text before its first colon).

    Each bundle writes a sorted part; one worker merges the parts' lines as streams, so no
    process holds the dead letters, only the list of part names.
    """

    def __init__(self, path: str, work: str):
        super().__init__()
        self.path, self.work = path, work

    def expand(self, dead):
        return (
            dead
            | "WriteParts" >> beam.ParDo(_DeadLetterPartsFn(self.work))
            | "ListParts" >> beam.combiners.ToList()
            | "MergeParts" >> beam.ParDo(_MergeDeadLettersFn(self.path))
        )
