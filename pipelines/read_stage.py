"""The first stage: source rows in, ``Example`` batch files out, every refusal a dead letter.

Two ways in: ``ReadExamples`` reads files (the CLI, ``build_transfer_set``), ``FromElements``
takes a ``PCollection`` of dicts or ``beam.Row``s inside a user's pipeline (``BuildTransferSet``).
Both spill examples by a hash of their id, so that a duplicate id meets its first use in one
bucket and is dead-lettered (two rows with one id would share a row id and a random stream),
and both count what came in, for the check that nothing was lost.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import time

import apache_beam as beam

from augment.seeding import stable_hash64
from augment.tasks import TaskSpec
from pipelines import exchange
from pipelines.exchange import emit_later
from pipelines.meter import StageMeter, counter
from pipelines.readers import Columns, RowBuilder, read_file
from pipelines.records import DeadLetter, Example
from pipelines.settings import ScaleConfig

DEAD = "dead_letter"
ELEMENTS = "<pcollection>"  # the source name of examples given as elements
HASHED = "hash-"  # the id of an element given without one: a hash of its texts and label


def _order(e: Example) -> tuple:
    """The order a bucket's examples are checked in: the first of two with one id wins. Files:
    by line; elements (no lines): by their content, so never by arrival order."""
    return e.source, e.line_number, e.source_id, e.text_a, e.text_b or "", str(e.label)


class _Buckets:
    """Examples held per id bucket, written out as ``(bucket, Spilled)`` every ``limit`` rows."""

    def __init__(self, work: str, id_buckets: int, limit: int):
        self.work, self.id_buckets, self.limit = work, id_buckets, limit
        self.parts: dict[int, list[Example]] = {}
        self.held = 0

    def add(self, ex: Example):
        self.parts.setdefault(stable_hash64(ex.source_id) % self.id_buckets, []).append(ex)
        self.held += 1
        if self.held >= self.limit:
            yield from self.flush()

    def flush(self):
        parts, self.parts, self.held = self.parts, {}, 0
        for bucket in sorted(parts):
            yield bucket, exchange.write_pickle(self.work, f"read-{bucket:05d}", parts[bucket])


class _ReadFileFn(beam.DoFn):
    """A file -> examples spilled by id bucket, and dead letters."""

    def __init__(self, spec, fmt, columns, limit, prefix_ids, work, id_buckets, scale, max_chars):
        self.spec, self.fmt, self.columns, self.max_chars = spec, fmt, columns, max_chars
        self.limit, self.prefix_ids = limit, prefix_ids
        self.work, self.id_buckets, self.scale = work, id_buckets, scale

    def setup(self):
        self.stage = StageMeter("read")
        self.dead = counter("dead_lettered")

    def process(self, path: str):
        started = time.perf_counter()
        buckets = _Buckets(self.work, self.id_buckets, self.scale.spill_rows)
        n = 0
        for item in read_file(path, self.spec, self.fmt, self.columns, self.limit, self.max_chars):
            n += 1
            if isinstance(item, DeadLetter):
                self.dead.inc()
                yield beam.pvalue.TaggedOutput(DEAD, item)
                continue
            if self.prefix_ids:  # several input files: row numbers alone would collide
                item = item._replace(source_id=f"{posixpath.basename(path)}:{item.source_id}")
            yield from buckets.add(item)
        yield from buckets.flush()
        self.stage.done(n, started)


def _as_dict(element) -> dict | None:
    """A dict, or a ``beam.Row`` / NamedTuple as one (both have ``_asdict``); else None."""
    if isinstance(element, dict):
        return element
    return element._asdict() if hasattr(element, "_asdict") else None


def _shown(element) -> str:
    try:
        return json.dumps(_as_dict(element) or element, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(element)


class _FromElementsFn(beam.DoFn):
    """Dicts or ``beam.Row``s (``text_a``, optional ``text_b``, ``label``, ``id``) -> examples
    spilled by id bucket, and dead letters. Without an ``id`` the id is a hash of the texts and
    label, so it never depends on the order elements arrive in."""

    def __init__(self, spec: TaskSpec, work: str, id_buckets: int, scale, max_chars):
        self.spec, self.work, self.id_buckets = spec, work, id_buckets
        self.scale, self.max_chars = scale, max_chars

    def setup(self):
        cols = Columns("text_a", "text_b" if self.spec.is_pair else None, "label", "id")
        self.builder = RowBuilder(self.spec, cols, None, ELEMENTS, self.max_chars)
        self.no_gold = RowBuilder(
            self.spec, dataclasses.replace(cols, label=None), None, ELEMENTS, self.max_chars
        )
        self.stage = StageMeter("read")
        self.dead = counter("dead_lettered")

    def start_bundle(self):
        self.buckets = _Buckets(self.work, self.id_buckets, self.scale.spill_rows)

    def process(self, element):
        started = time.perf_counter()
        record = _as_dict(element)
        if record is None:
            reason = f"not an example: a {type(element).__name__}; give dicts or beam.Rows"
        else:
            if record.get("id") is None:
                key = json.dumps(
                    [record.get(k) for k in ("text_a", "text_b", "label")], default=str
                )
                record = {**record, "id": f"{HASHED}{stable_hash64(key):016x}"}
            builder = self.builder if record.get("label") is not None else self.no_gold
            built = builder.build(record, 0)
            reason = built if isinstance(built, str) else None
        self.stage.done(1, started)
        if reason is not None:
            self.dead.inc()
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(ELEMENTS, 0, _shown(element), reason))
            return
        yield from self.buckets.add(built)

    def finish_bundle(self):
        for keyed in self.buckets.flush():
            yield emit_later(keyed)


class _CheckIdsFn(beam.DoFn):
    """One id bucket: later rows with an id seen before are dead-lettered; the rest leave in
    batches of ``batch_size``, in (file, line, id, texts) order."""

    def __init__(self, work: str, batch_size: int):
        self.work, self.batch_size = work, batch_size

    def setup(self):
        self.dead = counter("dead_lettered")
        self.duplicates = counter("duplicate_ids")

    def process(self, element):
        _, handles = element
        rows = [ex for h in sorted(handles) for ex in exchange.read_pickle(h.path)]
        rows.sort(key=_order)
        first: dict[str, Example] = {}
        batch: list[Example] = []
        for ex in rows:
            seen = first.get(ex.source_id)
            if seen is not None:
                self.dead.inc()
                self.duplicates.inc()
                raw = ex.text_a if ex.text_b is None else f"{ex.text_a}\t{ex.text_b}"
                where = (
                    f"line {seen.line_number} of {seen.source}"
                    if seen.line_number
                    else "another example"
                )
                reason = f"duplicate id: {ex.source_id!r} was already used by {where}"
                if ex.source_id.startswith(HASHED):
                    reason += " (no id given: the same texts and label twice)"
                yield beam.pvalue.TaggedOutput(
                    DEAD, DeadLetter(ex.source, ex.line_number, raw, reason)
                )
                continue
            first[ex.source_id] = ex
            batch.append(ex)
            if len(batch) >= self.batch_size:
                yield exchange.write_pickle(self.work, "examples", batch)
                batch = []
        if batch:
            yield exchange.write_pickle(self.work, "examples", batch)


def _checked(spilled, dead, work: str, batch_size: int):
    """``(bucket, Spilled)`` + the first dead letters -> batches, all dead letters, and how many
    source rows came in (``read``)."""
    checked = (
        spilled
        | "GroupById" >> beam.GroupByKey()
        | "CheckIds" >> beam.ParDo(_CheckIdsFn(work, batch_size)).with_outputs(DEAD, main="batches")
    )
    # one bucket is checked by one worker: spread its batches before the expensive stages
    batches = checked.batches | "Distribute" >> beam.Reshuffle()
    read = (
        (
            spilled | "SpilledRows" >> beam.Map(lambda kv: kv[1].rows),
            dead | "RefusedRows" >> beam.Map(lambda _: 1),
        )
        | "AllRead" >> beam.Flatten()
        | "CountRead" >> beam.CombineGlobally(sum)
    )
    dead = (dead, checked[DEAD]) | "ReadDeadLetters" >> beam.Flatten()
    return batches, dead, read


class ReadExamples(beam.PTransform):
    """File paths -> ``Example`` batch handles, ``DeadLetter``s, and the count of rows read."""

    def __init__(
        self,
        paths: list[str],
        spec: TaskSpec,
        fmt: str,
        columns: Columns,
        limit: int | None,
        work: str,
        id_buckets: int,
        scale: ScaleConfig,
        max_chars: int | None = None,
    ):
        super().__init__()
        self.read_fn = _ReadFileFn(
            spec, fmt, columns, limit, len(paths) > 1, work, id_buckets, scale, max_chars
        )
        self.paths, self.work, self.batch_size = paths, work, scale.batch_size

    def expand(self, pbegin):
        parsed = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "ParseFiles" >> beam.ParDo(self.read_fn).with_outputs(DEAD, main="spilled")
        )
        return _checked(parsed.spilled, parsed[DEAD], self.work, self.batch_size)


class FromElements(beam.PTransform):
    """Examples as elements -> ``Example`` batch handles, ``DeadLetter``s, rows read."""

    def __init__(self, spec, work: str, id_buckets: int, scale: ScaleConfig, max_chars=None):
        super().__init__()
        self.fn = _FromElementsFn(spec, work, id_buckets, scale, max_chars)
        self.work, self.batch_size = work, scale.batch_size

    def expand(self, elements):
        parsed = elements | "Parse" >> beam.ParDo(self.fn).with_outputs(DEAD, main="spilled")
        return _checked(parsed.spilled, parsed[DEAD], self.work, self.batch_size)
