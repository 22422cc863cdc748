"""The build's stages as composite ``PTransform``s. Files of batches, not rows, move between them.

Every stage reads the files named by its input handles and writes what it produces to the build's
work folder (``exchange.py``), so neither the runner nor a worker ever holds more than a batch,
a bucket or a shard, whatever the size of the data. spaCy runs over ``nlp.pipe`` batches.
"""

from __future__ import annotations

import gc
import logging
import math
import time

import apache_beam as beam
import pyarrow as pa

from augment import (
    AugmentConfig,
    PosVocabulary,
    TaggedSentence,
    augment_batch,
    load_tagger,
    tag_texts,
)
from augment.seeding import stable_hash64
from pipelines import exchange
from pipelines.exchange import KeyedSpill, Spilled, emit_later
from pipelines.meter import StageMeter, counter
from pipelines.read_stage import DEAD
from pipelines.records import DeadLetter, Example, Row, row_order_key, sort_indices
from pipelines.settings import ScaleConfig

logger = logging.getLogger(__name__)
VOCAB = "vocabulary"


def astuple(s: TaggedSentence) -> tuple:
    return s.tokens, s.spaces, s.tags


# -- tag ----------------------------------------------------------------------------------------
class _TagFn(beam.DoFn):
    def __init__(self, spacy_model, scheme, max_tokens, work):
        self.spacy_model, self.scheme, self.max_tokens = spacy_model, scheme, max_tokens
        self.work = work
        self.nlp = None

    def setup(self):
        self.nlp = load_tagger(self.spacy_model, self.scheme, fallback=False)
        gc.freeze()  # spaCy's many long-lived objects out of the collector's way
        self.stage = StageMeter("tagged")
        self.dead = counter("dead_lettered")

    def process(self, handle: Spilled):
        started = time.perf_counter()
        batch: list[Example] = exchange.read_pickle(handle.path)
        pairs = batch[0].text_b is not None
        texts = [ex.text_a for ex in batch] + ([ex.text_b for ex in batch] if pairs else [])
        tagged = list(tag_texts(self.nlp, texts, scheme=self.scheme, batch_size=len(texts)))
        out = []
        vocab = PosVocabulary()
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
                continue
            vocab.add(a)
            if b is not None:
                vocab.add(b)
            out.append((ex, astuple(a), astuple(b) if b is not None else None))
        self.stage.done(len(out), started)
        if out:
            yield exchange.write_pickle(self.work, "tagged", out)
            yield beam.pvalue.TaggedOutput(VOCAB, vocab)


class TagExamples(beam.PTransform):
    """Example batch handles -> tagged batch handles, per-batch POS vocabularies, dead letters.

    One spaCy pass per source text; rows over ``max_tokens`` become dead letters.
    """

    def __init__(self, spacy_model: str | None, scheme: str, max_tokens: int | None, work: str):
        super().__init__()
        self.spacy_model, self.scheme, self.max_tokens = spacy_model, scheme, max_tokens
        self.work = work

    def expand(self, batches):
        out = batches | "Tag" >> beam.ParDo(
            _TagFn(self.spacy_model, self.scheme, self.max_tokens, self.work)
        ).with_outputs(DEAD, VOCAB, main="tagged")
        return out.tagged, out[VOCAB], out[DEAD]


# -- vocabulary -----------------------------------------------------------------------------------
class _VocabularyFn(beam.CombineFn):
    def create_accumulator(self):
        return PosVocabulary()

    def add_input(self, acc, vocab):
        return acc.merge(vocab)

    def merge_accumulators(self, accs):
        return PosVocabulary.merged(accs)

    def extract_output(self, acc):
        return acc


class BuildPosVocabulary(beam.PTransform):
    """Per-batch vocabularies -> one ``PosVocabulary`` (counts add: any partition, same result)."""

    def expand(self, vocabularies):
        return vocabularies | "CountWords" >> beam.CombineGlobally(_VocabularyFn())


class CountRows(beam.PTransform):
    """Handles -> the total of their row counts (one int, for a side input)."""

    def expand(self, handles):
        return handles | "Rows" >> beam.Map(lambda h: h.rows) | "Sum" >> beam.CombineGlobally(sum)


# -- augment --------------------------------------------------------------------------------------
def text_key(text_a: str, text_b: str | None) -> str:
    """What makes two rows duplicates: their texts, stripped."""
    return text_a.strip() + "\x00" + (text_b or "").strip()


def dedup_buckets(sources: int, n_iter: int, max_bucket_rows: int) -> int:
    """Buckets for ``DeduplicateSamples``: at most ``max_bucket_rows`` rows each, whatever the
    data (a source yields at most ``1 + n_iter`` rows)."""
    return max(1, math.ceil(sources * (1 + n_iter) / max_bucket_rows))


class _AugmentFn(beam.DoFn):
    def __init__(self, config: AugmentConfig, unlabelled, schema, work, scale):
        self.config, self.schema, self.work, self.scale = config, schema, work, scale
        self.unlabelled = unlabelled  # the task's "no gold label" value (augment.tasks)

    def setup(self):
        self.stage = StageMeter("sampled")
        self.drawn = counter("drawn")
        self._nbr = None  # the neighbour table, built on first use (--p-nbr only)

    def start_bundle(self):
        self.spill = KeyedSpill(self.work, "rows-", self.scale.spill_rows)

    def _neighbours(self, vocab: PosVocabulary):
        """The corpus words' GloVe neighbours, built once per worker (``--p-nbr`` only)."""
        if self.config.p_nbr == 0:
            return None
        if self._nbr is None:
            from augment.neighbours import Neighbours

            self._nbr = Neighbours.glove(vocab.compiled.words, self.config.nbr_k)
        return self._nbr

    def process(self, handle: Spilled, vocab: PosVocabulary, sources: int):
        started = time.perf_counter()
        batch = [
            (ex, TaggedSentence(*a), TaggedSentence(*b) if b is not None else None)
            for ex, a, b in exchange.read_pickle(handle.path)
        ]
        samples = augment_batch(
            [(ex.source_id, a, b) for ex, a, b in batch],
            vocab=vocab,
            config=self.config,
            neighbours=self._neighbours(vocab),
        )
        buckets = dedup_buckets(sources, self.config.n_iter, self.scale.max_bucket_rows)
        parts: dict[int, list[Row]] = {}
        n = 0
        for (ex, _, _), kept in zip(batch, samples, strict=True):
            sid = ex.source_id
            rows = [Row(sid, sid, ex.text_a, ex.text_b, ex.label, True, "")]
            rows += [
                Row(f"{sid}-{s.index}", sid, s.text_a, s.text_b, self.unlabelled, False, s.ops)
                for s in kept
            ]
            for row in rows:
                bucket = stable_hash64(text_key(row.text_a, row.text_b)) % buckets
                parts.setdefault(bucket, []).append(row)
            n += len(kept)
        self.drawn.inc(len(batch) * self.config.n_iter)
        for bucket in sorted(parts):
            yield from self.spill.add(bucket, rows_to_table(parts[bucket], self.schema))
        self.stage.done(n, started)

    def finish_bundle(self):
        for keyed in self.spill.flush():
            yield emit_later(keyed)


class AugmentExamples(beam.PTransform):
    """Tagged batch handles + vocabulary + source count -> ``(bucket, rows file)`` handles.

    Rows (each original and its samples) are spilled by a hash of their text, into as many
    buckets as ``dedup_buckets`` says, so every copy of a text meets in one bucket.
    """

    def __init__(
        self,
        vocab,
        sources,
        config: AugmentConfig,
        unlabelled: int | float,
        schema,
        work,
        scale: ScaleConfig,
    ):
        super().__init__()
        self.vocab, self.sources, self.config = vocab, sources, config
        self.unlabelled = unlabelled
        self.schema, self.work, self.scale = schema, work, scale

    def expand(self, tagged):
        return tagged | "Augment" >> beam.ParDo(
            _AugmentFn(self.config, self.unlabelled, self.schema, self.work, self.scale),
            vocab=beam.pvalue.AsSingleton(self.vocab),
            sources=beam.pvalue.AsSingleton(self.sources),
        )


# -- dedup ----------------------------------------------------------------------------------------
def rows_to_table(rows: list[Row], schema: pa.Schema) -> pa.Table:
    """``Row``s -> a table of ``schema`` (its columns are ``Row``'s fields, by name)."""
    if list(schema.names) != list(Row._fields):
        raise ValueError(f"schema {schema.names} is not laid out like Row {Row._fields}")
    return pa.Table.from_arrays(
        [pa.array([getattr(r, f.name) for r in rows], type=f.type) for f in schema], schema=schema
    )


def kept_positions(
    ids: list[str],
    source_ids: list[str],
    texts_a: list[str],
    texts_b: list[str | None],
    is_original: list[bool],
) -> list[int]:
    """Positions of the rows that survive dedup, in no particular order.

    Originals all stay (each is a source row); a sample whose text another row has is dropped
    unless it has the smallest id among samples of a text no original has.
    """
    groups: dict[str, list[int]] = {}
    for i, (a, b) in enumerate(zip(texts_a, texts_b, strict=True)):
        groups.setdefault(text_key(a, b), []).append(i)
    keep: list[int] = []
    for group in groups.values():
        if len(group) == 1:
            keep.extend(group)
            continue
        kept = [i for i in group if is_original[i]]
        keep.extend(kept or [min(group, key=lambda i: row_order_key(ids[i], source_ids[i], False))])
    return keep


def deduplicate(rows: list[Row]) -> tuple[list[Row], int]:
    """``Row``s with distinct texts (``kept_positions``), and how many were dropped."""
    keep = kept_positions(
        [r.id for r in rows], [r.source_id for r in rows], [r.text_a for r in rows],
        [r.text_b for r in rows], [r.is_original for r in rows],
    )  # fmt: skip
    return [rows[i] for i in keep], len(rows) - len(keep)


def deduplicate_table(table: pa.Table) -> tuple[pa.Table, int]:
    """``kept_positions`` on a table: the rows kept, in natural id order, and how many were not."""
    c = table.select(["id", "source_id", "text_a", "text_b", "is_original"]).to_pydict()
    keep = kept_positions(c["id"], c["source_id"], c["text_a"], c["text_b"], c["is_original"])
    order = sort_indices(
        [c["id"][i] for i in keep], [c["source_id"][i] for i in keep],
        [c["is_original"][i] for i in keep],
    )  # fmt: skip
    return table.take(pa.array([keep[i] for i in order], type=pa.int64())), table.num_rows - len(
        keep
    )


class _DedupFn(beam.DoFn):
    def __init__(self, schema, work):
        self.schema, self.work = schema, work

    def setup(self):
        self.stage = StageMeter("deduplicated")
        self.dropped = counter("duplicates_dropped")
        self.held = beam.metrics.Metrics.distribution("transferset", "dedup_rows_held")

    def process(self, element):
        started = time.perf_counter()
        bucket, handles = element
        table = exchange.read_tables([h.path for h in handles], self.schema)
        self.held.update(table.num_rows)
        out, dropped = deduplicate_table(table)
        self.dropped.inc(dropped)
        self.stage.done(out.num_rows, started)
        # sorted by id: the teacher's work units do not depend on bundle order
        yield exchange.spill_table(self.work, f"dedup-{bucket:05d}", out)


class DeduplicateSamples(beam.PTransform):
    """Drop samples whose text another row has: an original wins, else the smallest id.

    Takes ``(bucket, rows file)`` handles whose bucket is a hash of the text; returns one
    handle per bucket, its rows in natural id order.
    """

    def __init__(self, schema: pa.Schema, work: str):
        super().__init__()
        self.schema, self.work = schema, work

    def expand(self, keyed):
        return (
            keyed
            | "GroupByText" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_DedupFn(self.schema, self.work))
        )
