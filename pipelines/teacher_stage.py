"""``AttachTeacherLogits``: the teacher step of the build, between dedup and write.

The unit of teacher work is a *chunk*: ``teacher_chunk_rows`` consecutive rows of one dedup
bucket file (whose rows are in natural id order, so the chunks are a function of the data and the
config alone). A chunk's texts are looked up in the logits cache; the rest are scored in
length-sorted token-budget batches and written to the cache as one part, atomically, before the
chunk's rows move on. A killed build, rerun with the same command, finds every finished chunk in
the cache and scores exactly the chunks that were missing, batched as the first run batched them:
its rows and logits are the same bytes as an uninterrupted run's.
"""

from __future__ import annotations

import logging
import time
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.utils.shared import Shared

from pipelines import exchange
from pipelines.exchange import Spilled
from pipelines.logits_cache import LogitsCache, cache_key, write_part
from pipelines.meter import StageMeter, counter
from pipelines.teacher import Teacher, TeacherConfig

logger = logging.getLogger(__name__)


class _Loaded:
    """What one worker process holds: the model and a view of the cache (``Shared`` needs a
    weakref-able object)."""

    def __init__(self, config, task_labels, cache_folder, cache_fields):
        self.teacher = Teacher(config, task_labels)
        self.cache = LogitsCache(cache_folder, cache_fields)


def logits_column(logits: np.ndarray) -> pa.Array:
    """``(n, k)`` float32 -> the ``list<float32>`` column of the row schema."""
    n, k = logits.shape
    offsets = pa.array(np.arange(0, n * k + 1, max(k, 1), dtype=np.int32)[: n + 1])
    return pa.ListArray.from_arrays(offsets, pa.array(logits.reshape(-1), type=pa.float32()))


class _TeacherFn(beam.DoFn):
    def __init__(
        self,
        config: TeacherConfig,
        task_labels,
        cache_folder: str | None,
        cache_fields: dict | None,
        schema: pa.Schema,
        work: str,
        chunk_rows: int,
        tag: str,
    ):
        self.config, self.task_labels = config, task_labels
        self.cache_folder, self.cache_fields = cache_folder, cache_fields
        self.schema, self.work, self.chunk_rows, self.tag = schema, work, chunk_rows, tag
        self._shared = Shared()

    def setup(self):
        self.loaded = self._shared.acquire(
            lambda: _Loaded(self.config, self.task_labels, self.cache_folder, self.cache_fields),
            tag=self.tag,
        )
        self.stage = StageMeter("teacher")
        self.hits = counter("teacher_cache_hits")
        self.scored = counter("teacher_scored")
        self.passes = counter("teacher_forward_passes")
        self.truncated = counter("teacher_truncated")
        self.parts = counter("teacher_cache_parts")

    def process(self, handle: Spilled, total: int):
        table = exchange.read_table(handle.path)
        chunks = [
            self._chunk(table.slice(start, self.chunk_rows), total)
            for start in range(0, table.num_rows, self.chunk_rows)
        ]
        out = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
        table = table.append_column(self.schema.field("teacher_logits"), logits_column(out))
        yield exchange.spill_table(self.work, "teacher", table.cast(self.schema))

    def _chunk(self, rows: pa.Table, total: int) -> np.ndarray:
        """Task-order logits of one chunk; its newly scored texts are durable on return."""
        started = time.perf_counter()
        teacher, cache = self.loaded.teacher, self.loaded.cache
        texts_a = rows.column("text_a").to_pylist()
        texts_b = rows.column("text_b").to_pylist()
        pairs = texts_b[0] is not None
        keys = [cache_key(a, b) for a, b in zip(texts_a, texts_b, strict=True)]
        found, raw = cache.lookup(keys, teacher.raw_width)
        need: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(~found).tolist():
            need.setdefault(keys[i], []).append(i)  # identical texts are scored once
        self.hits.inc(int(found.sum()))
        if need:
            first = [idx[0] for idx in need.values()]
            passes, truncated = teacher.forward_passes, teacher.truncated
            scores = teacher.raw_logits(
                [texts_a[i] for i in first], [texts_b[i] for i in first] if pairs else None
            )
            self.passes.inc(teacher.forward_passes - passes)
            self.truncated.inc(teacher.truncated - truncated)
            self.scored.inc(len(first))
            for score, idx in zip(scores, need.values(), strict=True):
                raw[idx] = score
            if self.cache_folder:
                write_part(self.cache_folder, list(need), scores, self.cache_fields)
                self.parts.inc()
        self.stage.done(rows.num_rows, started, total)
        return raw[:, teacher.perm]


class AttachTeacherLogits(beam.PTransform):
    """Rows-file handles -> handles of the same rows with ``teacher_logits`` appended.

    ``total`` (a singleton PCollection of the row count) feeds the progress line's ETA.
    """

    def __init__(
        self,
        config: TeacherConfig,
        task_labels,
        cache_folder: str | None,
        cache_fields: dict | None,
        schema: pa.Schema,
        work: str,
        chunk_rows: int,
        total,
    ):
        super().__init__()
        self.config, self.task_labels = config, task_labels
        self.cache_folder, self.cache_fields = cache_folder, cache_fields
        self.schema, self.work, self.chunk_rows, self.total = schema, work, chunk_rows, total

    def expand(self, handles):
        tag = f"teacher-{uuid.uuid4().hex}"  # one load per build, even in one process
        return handles | "Score" >> beam.ParDo(
            _TeacherFn(
                self.config,
                self.task_labels,
                self.cache_folder,
                self.cache_fields,
                self.schema,
                self.work,
                self.chunk_rows,
                tag,
            ),
            total=beam.pvalue.AsSingleton(self.total),
        )
