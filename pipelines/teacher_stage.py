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
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from pipelines import exchange
from pipelines.exchange import KeyedSpill, Spilled, emit_later
from pipelines.logits_cache import (
    LogitsCache,
    cache_folder,
    cache_key,
    ensure_folder,
    runtime_fields,
    write_part,
)
from pipelines.meter import StageMeter, counter
from pipelines.stages import CountRows
from pipelines.teacher import Teacher, TeacherConfig

logger = logging.getLogger(__name__)
RAN_PREFIX = "teacher_ran:"  # + "dtype/device": rows a worker scored or looked up that way


class _Loaded:
    """What one worker process holds (``RunInference`` shares it between the process's threads):
    the model and a read-only view of the cache as it was when the model loaded.

    The cache folder is chosen here, by the dtype and device the model really runs with. A
    cache that can't be made or written (read-only, full) is an optimisation lost, not a
    failure: one warning, and the worker goes on scoring without it.
    """

    def __init__(self, config, task_labels, cache_root, cache_fields):
        self.teacher = Teacher(config, task_labels)
        self.runtime = f"{self.teacher.dtype}/{self.teacher.device.type}"
        self.fields = self.folder = None
        self.writable = bool(cache_root)
        self.reported = False  # bad parts counted once per process
        if cache_root:
            self.fields = runtime_fields(cache_fields, self.teacher.dtype, self.teacher.device.type)
            self.folder = cache_folder(cache_root, self.fields)
            try:
                ensure_folder(self.folder)
            except Exception as exc:  # noqa: BLE001 - any file system's refusal
                self.disable_writes(exc)
        self.cache = LogitsCache(self.folder, self.fields)

    def disable_writes(self, exc: Exception) -> None:
        logger.warning(
            "logits cache %s can't be written (%s): scoring without caching", self.folder, exc
        )
        self.writable = False

    def save(self, keys: list[bytes], scores) -> bool:
        """Make newly scored logits durable; False where the cache can't take them."""
        if not self.writable:
            return False
        try:
            write_part(self.folder, keys, scores, self.fields)
        except OSError as exc:
            self.disable_writes(exc)
            return False
        return True


def logits_column(logits: np.ndarray) -> pa.Array:
    """``(n, k)`` float32 -> the ``list<float32>`` column of the row schema."""
    n, k = logits.shape
    offsets = pa.array(np.arange(0, n * k + 1, max(k, 1), dtype=np.int32)[: n + 1])
    return pa.ListArray.from_arrays(offsets, pa.array(logits.reshape(-1), type=pa.float32()))


class TeacherModelHandler(ModelHandler):
    """Beam's ``ModelHandler`` for our teacher: an example is one chunk of rows, an Arrow table
    with ``text_a`` and ``text_b`` (or a ``TeacherChunk``); the inference, its logits in the
    task's label order (``task_labels``; ``None`` for regression), one row per text.

    ``RunInference`` loads the model once per process and hands us one chunk per call
    (``max_batch_size=1``): the chunk is already the batch unit, cut by ``teacher_chunk_rows``
    and token-budget batched inside ``Teacher`` by length, which ``BatchElements`` can't do.
    """

    def __init__(
        self,
        config: TeacherConfig,
        task_labels: tuple[str, ...] | None,
        cache_root: str | None = None,
        cache_fields: dict | None = None,
    ):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.config, self.task_labels = config, task_labels
        self.cache_root, self.cache_fields = cache_root, cache_fields
        self._meters = None

    def load_model(self) -> _Loaded:
        return _Loaded(self.config, self.task_labels, self.cache_root, self.cache_fields)

    def run_inference(self, batch, model: _Loaded, inference_args=None):
        if self._meters is None:
            self._meters = _Meters()
        if not model.reported:  # metrics count inside bundles only, not in load_model
            model.reported = True
            self._meters.bad_parts.inc(len(model.cache.bad))
        chunks = [c if isinstance(c, TeacherChunk) else TeacherChunk(c, c.num_rows) for c in batch]
        return [PredictionResult(chunk, self._score(chunk, model)) for chunk in chunks]

    def get_num_bytes(self, batch) -> int:
        return sum((c.rows if isinstance(c, TeacherChunk) else c).nbytes for c in batch)

    def get_metrics_namespace(self) -> str:
        return "transferset_teacher"

    def _score(self, chunk: TeacherChunk, model: _Loaded) -> np.ndarray:
        """Task-order logits of one chunk; its newly scored texts are durable on return."""
        started = time.perf_counter()
        rows = chunk.rows
        m, teacher, cache = self._meters, model.teacher, model.cache
        texts_a = rows.column("text_a").to_pylist()
        has_b = "text_b" in rows.column_names
        texts_b = rows.column("text_b").to_pylist() if has_b else [None] * rows.num_rows
        pairs = texts_b[0] is not None
        keys = [cache_key(a, b) for a, b in zip(texts_a, texts_b, strict=True)]
        found, raw = cache.lookup(keys, teacher.raw_width)
        need: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(~found).tolist():
            need.setdefault(keys[i], []).append(i)  # identical texts are scored once
        m.hits.inc(int(found.sum()))
        if need:
            first = [idx[0] for idx in need.values()]
            passes, truncated = teacher.forward_passes, teacher.truncated
            scores = teacher.raw_logits(
                [texts_a[i] for i in first], [texts_b[i] for i in first] if pairs else None
            )
            m.passes.inc(teacher.forward_passes - passes)
            m.truncated.inc(teacher.truncated - truncated)
            m.scored.inc(len(first))
            for score, idx in zip(scores, need.values(), strict=True):
                raw[idx] = score
            if model.save(list(need), scores):
                m.parts.inc()
            elif model.folder:
                m.unsaved.inc(len(first))
        counter(RAN_PREFIX + model.runtime).inc(rows.num_rows)
        m.stage.done(rows.num_rows, started, chunk.total)
        return raw[:, teacher.perm]


class TeacherChunk(NamedTuple):
    """One unit of teacher work, and how many rows the whole stage has (for the ETA)."""

    rows: pa.Table
    total: int


class _Meters:
    def __init__(self):
        self.stage = StageMeter("teacher")
        self.hits = counter("teacher_cache_hits")
        self.scored = counter("teacher_scored")
        self.passes = counter("teacher_forward_passes")
        self.truncated = counter("teacher_truncated")
        self.parts = counter("teacher_cache_parts")
        self.unsaved = counter("teacher_cache_unsaved")
        self.bad_parts = counter("teacher_cache_parts_bad")


class _ChunkFn(beam.DoFn):
    """A rows file -> its chunks of ``chunk_rows`` rows, in file (natural id) order."""

    def __init__(self, chunk_rows: int):
        self.chunk_rows = chunk_rows

    def process(self, handle: Spilled, total: int):
        table = exchange.read_table(handle.path)
        for start in range(0, table.num_rows, self.chunk_rows):
            yield TeacherChunk(table.slice(start, self.chunk_rows), total)


class _AttachFn(beam.DoFn):
    """Chunks and their logits -> rows files with ``teacher_logits`` appended (``spill_rows``
    rows a file at most, so the shard step reads few files)."""

    def __init__(self, schema: pa.Schema, work: str, spill_rows: int):
        self.schema, self.work, self.spill_rows = schema, work, spill_rows

    def start_bundle(self):
        self.spill = KeyedSpill(self.work, "teacher-", self.spill_rows)

    def process(self, result: PredictionResult):
        rows, logits = result.example.rows, result.inference
        table = rows.append_column(self.schema.field("teacher_logits"), logits_column(logits))
        for _, handle in self.spill.add(0, table.cast(self.schema)):
            yield handle

    def finish_bundle(self):
        for _, handle in self.spill.flush():
            yield emit_later(handle)


class AttachTeacherLogits(beam.PTransform):
    """Rows-file handles -> handles of the same rows with ``teacher_logits`` appended.

    Beam's ``RunInference`` with ``TeacherModelHandler``: one model per worker process, Beam's
    inference metrics, and our length-sorted token-budget batches inside each chunk.
    """

    def __init__(
        self,
        config: TeacherConfig,
        task_labels,
        cache_root: str | None,
        cache_fields: dict | None,
        schema: pa.Schema,
        work: str,
        chunk_rows: int,
        spill_rows: int,
    ):
        super().__init__()
        self.handler = TeacherModelHandler(config, task_labels, cache_root, cache_fields)
        self.schema, self.work = schema, work
        self.chunk_rows, self.spill_rows = chunk_rows, spill_rows

    def expand(self, handles):
        return (
            handles
            | "Chunk"
            >> beam.ParDo(
                _ChunkFn(self.chunk_rows),
                total=beam.pvalue.AsSingleton(handles | "CountRows" >> CountRows()),
            )
            | "RunInference" >> RunInference(self.handler, model_identifier=uuid.uuid4().hex)
            | "Attach" >> beam.ParDo(_AttachFn(self.schema, self.work, self.spill_rows))
        )
