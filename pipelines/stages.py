"""The build's stages as composite ``PTransform``s. Batches, not rows, move between them.

A Beam step costs about a microsecond per element in-process and far more where elements are
encoded between stages, and spaCy is much faster over ``nlp.pipe`` batches than per row; so
every expensive stage takes and emits lists of ~``batch_size`` rows.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from augment import AugmentConfig, PosVocabulary, augment_batch, load_tagger, tag_texts
from augment.seeding import stable_hash64
from pipelines.readers import Columns, read_file
from pipelines.records import DeadLetter, Example, Row, row_sort_key
from pipelines.tasks import TaskSpec

logger = logging.getLogger(__name__)
NAMESPACE = "transferset"
DEAD = "dead_letter"


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
    def __init__(self, spec, fmt, columns, limit, batch_size):
        self.spec, self.fmt, self.columns = spec, fmt, columns
        self.limit, self.batch_size = limit, batch_size

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
            batch.append(item)
            if len(batch) >= self.batch_size:
                self.stage.done(len(batch), started)
                started = time.perf_counter()
                yield batch
                batch = []
        if batch:
            self.stage.done(len(batch), started)
            yield batch


class ReadExamples(beam.PTransform):
    """Files -> batches of ``Example`` (main) and ``DeadLetter``s (tag ``dead_letter``)."""

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
                _ReadFileFn(self.spec, self.fmt, self.columns, self.limit, self.batch_size)
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

    def process(self, batch: list[Example]):
        started = time.perf_counter()
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
                out.append((ex, a, b))
        self.stage.done(len(out), started)
        if out:
            yield out


class TagExamples(beam.PTransform):
    """Batches of ``Example`` -> batches of ``(example, tagged_a, tagged_b)``; one spaCy pass."""

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

    def add_input(self, acc, batch):
        for _, a, b in batch:
            acc.add(a)
            if b is not None:
                acc.add(b)
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

    def process(self, batch, vocab: PosVocabulary):
        started = time.perf_counter()
        samples = augment_batch(
            [(ex.source_id, a, b) for ex, a, b in batch], vocab=vocab, config=self.config
        )
        rows: list[Row] = []
        n = 0
        for (ex, _, _), kept in zip(batch, samples, strict=True):
            sid = ex.source_id
            rows.append(Row(sid, sid, ex.text_a, ex.text_b, ex.label, True, ""))
            for s in kept:
                rows.append(
                    Row(f"{sid}-{s.index}", sid, s.text_a, s.text_b, self.unlabelled, False, s.ops)
                )
            n += len(kept)
        self.drawn.inc(len(batch) * self.config.n_iter)
        self.stage.done(n, started)
        yield rows


class AugmentExamples(beam.PTransform):
    """Tagged batches + vocabulary -> batches of ``Row`` (each original, then its samples)."""

    def __init__(self, vocab, config: AugmentConfig, regression: bool):
        super().__init__()
        self.vocab, self.config, self.regression = vocab, config, regression

    def expand(self, tagged):
        return tagged | "Augment" >> beam.ParDo(
            _AugmentFn(self.config, self.regression), vocab=beam.pvalue.AsSingleton(self.vocab)
        )


# -- dedup ----------------------------------------------------------------------------------------
def text_key(row: Row) -> str:
    return row.text_a.strip() + "\x00" + (row.text_b or "").strip()


class _BucketFn(beam.DoFn):
    def __init__(self, buckets: int):
        self.buckets = buckets

    def process(self, rows: list[Row]):
        parts: dict[int, list[Row]] = {}
        for row in rows:
            parts.setdefault(stable_hash64(text_key(row)) % self.buckets, []).append(row)
        yield from parts.items()


class _DedupFn(beam.DoFn):
    def setup(self):
        self.stage = _Stage("deduplicated")
        self.dropped = counter("duplicates_dropped")

    def process(self, element):
        started = time.perf_counter()
        _, parts = element
        groups: dict[str, list[Row]] = {}
        for part in parts:
            for row in part:
                groups.setdefault(text_key(row), []).append(row)
        out: list[Row] = []
        for rows in groups.values():
            if len(rows) == 1:
                out.append(rows[0])
                continue
            originals = [r for r in rows if r.is_original]
            # originals all stay (each is a source row); otherwise the smallest id wins
            keep = originals or [min(rows, key=row_sort_key)]
            out.extend(keep)
            self.dropped.inc(len(rows) - len(keep))
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


def flatten_batches(batches: Iterable[list]) -> list:
    return [x for b in batches for x in b]
