"""``AttachTeacherLogits``: the teacher step of the build, between dedup and write."""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.utils.shared import Shared

from pipelines.logits_cache import LogitsCache, cache_key
from pipelines.records import TEXT_A, TEXT_B, pack, unpack
from pipelines.stages import _Stage, counter
from pipelines.teacher import Teacher, TeacherConfig

NEW_LOGITS = "new_logits"


class _Loaded:
    """What one worker process holds: the model and the cache (``Shared`` needs a weakref-able
    object)."""

    def __init__(self, config, task_labels, cache_folder):
        self.teacher = Teacher(config, task_labels)
        self.cache = LogitsCache.load(cache_folder)


class _TeacherFn(beam.DoFn):
    def __init__(self, config: TeacherConfig, task_labels, cache_folder: str | None, tag: str):
        self.config, self.task_labels = config, task_labels
        self.cache_folder, self.tag = cache_folder, tag
        self._shared = Shared()

    def setup(self):
        self.loaded = self._shared.acquire(
            lambda: _Loaded(self.config, self.task_labels, self.cache_folder), tag=self.tag
        )
        self.stage = _Stage("teacher")
        self.hits = counter("teacher_cache_hits")
        self.scored = counter("teacher_scored")
        self.passes = counter("teacher_forward_passes")
        self.truncated = counter("teacher_truncated")

    def process(self, rows: list[tuple]):
        started = time.perf_counter()
        teacher, cache = self.loaded.teacher, self.loaded.cache
        logits: list = [None] * len(rows)
        need: dict[bytes, list[int]] = {}
        for i, row in enumerate(rows):
            key = cache_key(row[TEXT_A], row[TEXT_B])
            hit = cache.get(key)
            if hit is not None:
                logits[i] = tuple(hit.tolist())
            else:
                need.setdefault(key, []).append(i)  # identical texts are scored once
        self.hits.inc(len(rows) - sum(len(v) for v in need.values()))
        if need:
            keys = list(need)
            first = [rows[need[k][0]] for k in keys]
            pairs = first[0][TEXT_B] is not None
            passes, truncated = teacher.forward_passes, teacher.truncated
            scores = teacher.logits(
                [r[TEXT_A] for r in first], [r[TEXT_B] for r in first] if pairs else None
            ).tolist()
            self.passes.inc(teacher.forward_passes - passes)
            self.truncated.inc(teacher.truncated - truncated)
            self.scored.inc(len(keys))
            for key, score in zip(keys, scores, strict=True):
                for i in need[key]:
                    logits[i] = tuple(score)
            if self.cache_folder:  # only a cache keeps them
                yield beam.pvalue.TaggedOutput(
                    NEW_LOGITS, pack([(k, tuple(s)) for k, s in zip(keys, scores, strict=True)])
                )
        self.stage.done(len(rows), started)
        yield [row + (score,) for row, score in zip(rows, logits, strict=True)]


class AttachTeacherLogits(beam.PTransform):
    """Row lists -> the same rows with ``teacher_logits`` appended (main), and the newly scored
    ``(key, logits)`` entries as packed batches (``new_logits``) for the cache."""

    def __init__(
        self, config: TeacherConfig, task_labels, cache_folder: str | None, weights_sha256: str
    ):
        super().__init__()
        self.config, self.task_labels = config, task_labels
        self.cache_folder, self.sha = cache_folder, weights_sha256

    def expand(self, rows):
        out = rows | "Score" >> beam.ParDo(
            _TeacherFn(
                self.config,
                self.task_labels,
                self.cache_folder,
                tag=f"{self.sha}:{self.config.max_length}:{self.cache_folder}",
            )
        ).with_outputs(NEW_LOGITS, main="rows")
        return out.rows, out[NEW_LOGITS]


class _WriteCachePartFn(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, packed_parts):
        from pipelines.logits_cache import write_part

        entries = [e for part in packed_parts for e in unpack(part)]
        if entries:
            yield write_part(self.path, entries)


class WriteCachePart(beam.PTransform):
    """The run's newly scored logits as one cache part (only when there are any)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, new_logits):
        return (
            new_logits
            | "CollectNewLogits" >> beam.combiners.ToList()
            | "WriteCachePartFile" >> beam.ParDo(_WriteCachePartFn(self.path))
        )
