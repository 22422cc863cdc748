"""The build's stages as composite ``PTransform``s. Batches, not rows, move between them.

A Beam step costs about a microsecond per element in-process and far more where elements are
encoded between stages, and spaCy is much faster over ``nlp.pipe`` batches than per row; so
every expensive stage takes and emits one ``bytes`` value per batch of ~``batch_size`` source
rows (``records.pack``): plain tuples inside, decoded where they are used.
"""

from __future__ import annotations

import gc
import logging
import math
import posixpath
import time
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from augment import (
    AugmentConfig,
    PosVocabulary,
    TaggedSentence,
    augment_batch,
    load_tagger,
    tag_texts,
)
from augment.seeding import stable_hash64
from pipelines.readers import Columns, read_file
from pipelines.records import (
    IS_ORIGINAL,
    TEXT_A,
    TEXT_B,
    DeadLetter,
    Example,
    pack,
    row_sort_key,
    unpack,
)
from pipelines.tasks import TaskSpec

logger = logging.getLogger(__name__)
NAMESPACE = "transferset"
DEAD = "dead_letter"


def astuple(s: TaggedSentence) -> tuple:
    return s.tokens, s.spaces, s.tags


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class _Stage:
    """Counts rows and busy time of one stage; logs progress at most every ``every`` seconds."""

    def __init__(self, name: str, every: float = 15.0):
        self.name = name
        self.rows = counter(name)
        self.busy_us = counter(f"{name}_busy_us")
        self.every = every
        self.seen = 0
        self.last = time.monotonic()

    def done(self, rows: int, started: float) -> None:
        self.rows.inc(rows)
        self.busy_us.inc(int((time.perf_counter() - started) * 1e6))
        self.seen += rows
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            logger.info("%s: %d rows so far (this worker)", self.name, self.seen)


# -- read ---------------------------------------------------------------------------------------
class _ReadFileFn(beam.DoFn):
    def __init__(self, spec, fmt, columns, limit, batch_size, prefix_ids):
        self.spec, self.fmt, self.columns = spec, fmt, columns
        self.limit, self.batch_size, self.prefix_ids = limit, batch_size, prefix_ids

    def setup(self):
        self.stage = _Stage("read")
        self.dead = counter("dead_lettered")

    def process(self, path: str):
        started = time.perf_counter()
        batch: list[Example] = []
        for item in read_file(path, self.spec, self.fmt, self.columns, self.limit):
            if isinstance(item, DeadLetter):
                self.stage.rows.inc()
                self.dead.inc()
                yield beam.pvalue.TaggedOutput(DEAD, item)
                continue
            if self.prefix_ids:  # several input files: row numbers alone would collide
                item = item._replace(source_id=f"{posixpath.basename(path)}:{item.source_id}")
            batch.append(tuple(item))
            if len(batch) >= self.batch_size:
                self.stage.done(len(batch), started)
                started = time.perf_counter()
                yield pack(batch)
                batch = []
        if batch:
            self.stage.done(len(batch), started)
            yield pack(batch)


class ReadExamples(beam.PTransform):
    """Files -> packed ``Example`` batches (main) and ``DeadLetter``s (``dead_letter``)."""

    def __init__(
        self,
        paths: list[str],
        spec: TaskSpec,
        fmt: str,
        columns: Columns,
        limit: int | None = None,
        batch_size: int = 1000,
    ):
        super().__init__()
        self.paths, self.spec, self.fmt = paths, spec, fmt
        self.columns, self.limit, self.batch_size = columns, limit, batch_size

    def expand(self, pbegin):
        parsed = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "ParseFiles"
            >> beam.ParDo(
                _ReadFileFn(
                    self.spec,
                    self.fmt,
                    self.columns,
                    self.limit,
                    self.batch_size,
                    prefix_ids=len(self.paths) > 1,
                )
            ).with_outputs(DEAD, main="examples")
        )
        # one file is parsed by one worker: spread its batches before the expensive stages
        batches = parsed.examples | "Distribute" >> beam.Reshuffle()
        return batches, parsed[DEAD]


# -- tag ----------------------------------------------------------------------------------------
class _TagFn(beam.DoFn):
    def __init__(self, spacy_model, scheme, max_tokens):
        self.spacy_model, self.scheme, self.max_tokens = spacy_model, scheme, max_tokens
        self.nlp = None

    def setup(self):
        self.nlp = load_tagger(self.spacy_model, self.scheme)
        gc.freeze()  # spaCy's many long-lived objects out of the collector's way
        self.stage = _Stage("tagged")
        self.dead = counter("dead_lettered")

    def process(self, packed: bytes):
        started = time.perf_counter()
        batch = [Example(*t) for t in unpack(packed)]
        pairs = batch[0].text_b is not None
        texts = [ex.text_a for ex in batch] + ([ex.text_b for ex in batch] if pairs else [])
        tagged = list(tag_texts(self.nlp, texts, scheme=self.scheme, batch_size=len(texts)))
        out = []
        for k, ex in enumerate(batch):
            a = tagged[k]
            b = tagged[len(batch) + k] if pairs else None
            reason = None
            for name, s in (("text_a", a), ("text_b", b)):
                if s is None:
                    continue
                if len(s) == 0:
                    reason = f"empty {name}: no tokens after tagging"
                elif self.max_tokens is not None and len(s) > self.max_tokens:
                    reason = f"too long: {name} has {len(s)} tokens, max_tokens={self.max_tokens}"
            if reason:
                self.dead.inc()
                raw = ex.text_a if b is None else f"{ex.text_a}\t{ex.text_b}"
                yield beam.pvalue.TaggedOutput(
                    DEAD, DeadLetter(ex.source, ex.line_number, raw, reason)
                )
            else:
                out.append((tuple(ex), astuple(a), astuple(b) if b is not None else None))
        self.stage.done(len(out), started)
        if out:
            yield pack(out)


class TagExamples(beam.PTransform):
    """Packed ``Example`` batches -> packed ``(example, tagged_a, tagged_b)`` batches.

    One spaCy pass per source text; rows over ``max_tokens`` become dead letters.
    """

    def __init__(self, spacy_model: str | None, scheme: str, max_tokens: int | None):
        super().__init__()
        self.spacy_model, self.scheme, self.max_tokens = spacy_model, scheme, max_tokens

    def expand(self, batches):
        out = batches | "Tag" >> beam.ParDo(
            _TagFn(self.spacy_model, self.scheme, self.max_tokens)
        ).with_outputs(DEAD, main="tagged")
        return out.tagged, out[DEAD]


# -- vocabulary -----------------------------------------------------------------------------------
class _VocabularyFn(beam.CombineFn):
    def create_accumulator(self):
        return PosVocabulary()

    def add_input(self, acc, packed):
        for _, a, b in unpack(packed):
            acc.add(TaggedSentence(*a))
            if b is not None:
                acc.add(TaggedSentence(*b))
        return acc

    def merge_accumulators(self, accs):
        return PosVocabulary.merged(accs)

    def extract_output(self, acc):
        return acc


class BuildPosVocabulary(beam.PTransform):
    """Tagged batches -> one ``PosVocabulary`` (counts add, so any partition gives the same)."""

    def expand(self, tagged):
        return tagged | "CountWords" >> beam.CombineGlobally(_VocabularyFn())


# -- augment --------------------------------------------------------------------------------------
class _AugmentFn(beam.DoFn):
    def __init__(self, config: AugmentConfig, regression: bool):
        self.config = config
        self.unlabelled = math.nan if regression else -1

    def setup(self):
        self.stage = _Stage("sampled")
        self.drawn = counter("drawn")

    def process(self, packed: bytes, vocab: PosVocabulary):
        started = time.perf_counter()
        batch = [
            (Example(*ex), TaggedSentence(*a), TaggedSentence(*b) if b is not None else None)
            for ex, a, b in unpack(packed)
        ]
        samples = augment_batch(
            [(ex.source_id, a, b) for ex, a, b in batch], vocab=vocab, config=self.config
        )
        rows: list[tuple] = []  # laid out like records.Row
        n = 0
        unlabelled = self.unlabelled
        for (ex, _, _), kept in zip(batch, samples, strict=True):
            sid = ex.source_id
            rows.append((sid, sid, ex.text_a, ex.text_b, ex.label, True, ""))
            rows += [
                (f"{sid}-{s.index}", sid, s.text_a, s.text_b, unlabelled, False, s.ops)
                for s in kept
            ]
            n += len(kept)
        self.drawn.inc(len(batch) * self.config.n_iter)
        self.stage.done(n, started)
        yield rows


class AugmentExamples(beam.PTransform):
    """Tagged batches + vocabulary -> lists of row tuples (each original, then its samples)."""

    def __init__(self, vocab, config: AugmentConfig, regression: bool):
        super().__init__()
        self.vocab, self.config, self.regression = vocab, config, regression

    def expand(self, tagged):
        return tagged | "Augment" >> beam.ParDo(
            _AugmentFn(self.config, self.regression), vocab=beam.pvalue.AsSingleton(self.vocab)
        )


# -- dedup ----------------------------------------------------------------------------------------
def text_key(row: tuple) -> str:
    return row[TEXT_A].strip() + "\x00" + (row[TEXT_B] or "").strip()


class _BucketFn(beam.DoFn):
    def __init__(self, buckets: int):
        self.buckets = buckets

    def process(self, rows: list[tuple]):
        parts: dict[int, list[tuple]] = {}
        for row in rows:
            parts.setdefault(stable_hash64(text_key(row)) % self.buckets, []).append(row)
        for bucket, part in parts.items():
            yield bucket, pack(part)


def deduplicate(rows: Iterable[tuple]) -> tuple[list[tuple], int]:
    """Rows with distinct texts, and how many were dropped.

    Originals all stay (each is a source row); a sample whose text another row has is dropped
    unless it has the smallest id among samples of a text no original has.
    """
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        groups.setdefault(text_key(row), []).append(row)
    out: list[tuple] = []
    dropped = 0
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        keep = [r for r in group if r[IS_ORIGINAL]] or [min(group, key=row_sort_key)]
        out.extend(keep)
        dropped += len(group) - len(keep)
    return out, dropped


class _DedupFn(beam.DoFn):
    def setup(self):
        self.stage = _Stage("deduplicated")
        self.dropped = counter("duplicates_dropped")

    def process(self, element):
        started = time.perf_counter()
        _, parts = element
        out, dropped = deduplicate(row for part in parts for row in unpack(part))
        out.sort(key=row_sort_key)  # the teacher's batches must not depend on bundle order
        self.dropped.inc(dropped)
        self.stage.done(len(out), started)
        yield out


class DeduplicateSamples(beam.PTransform):
    """Drop samples whose text another row has: an original wins, else the smallest id.

    Rows travel in per-bucket lists keyed by a stable hash of the text, so the shuffle moves
    a few thousand lists instead of a million rows.
    """

    def __init__(self, buckets: int = 64):
        super().__init__()
        self.buckets = buckets

    def expand(self, rows):
        return (
            rows
            | "BucketByText" >> beam.ParDo(_BucketFn(self.buckets))
            | "GroupByText" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_DedupFn())
        )
