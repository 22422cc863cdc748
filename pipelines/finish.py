"""The end of a build: what each stage produced becomes ``Counts`` and a ``Manifest``, the
set's JSON files are written beside its staged shards, and (in a user's pipeline) the staged
set is committed; all inside the pipeline, in ``FinishTransferSet``.

The counts come from the data (rows in the files each stage wrote, reasons in the dead-letter
file), so they hold on any runner; Beam's metrics add only diagnostics (busy seconds, teacher
cache hits, rows a worker held), read by ``with_metrics`` after a run the driver waited for.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import sys
import time
from collections import Counter
from dataclasses import replace
from importlib import metadata
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines import cache_compaction, logits_cache, preflight
from pipelines.meter import NAMESPACE
from pipelines.options import Plan, TeacherPlan
from pipelines.outdir import Committer
from pipelines.shards import features_for
from pipelines.teacher_stage import RAN_PREFIX
from pipelines.transfer_set import Counts, Manifest, read_manifest, write_set_files

logger = logging.getLogger(__name__)
STAGES = ("read", "tagged", "sampled", "deduplicated", "teacher", "written")
__all__ = ["Committer", "FinishTransferSet", "Produced", "compact_caches", "with_metrics"]


class Produced(NamedTuple):
    """The ``PCollection``s the finishing step waits on and counts."""

    read: beam.PCollection  # one int: source rows that came in
    tagged: beam.PCollection  # one int: source rows tagged (the originals)
    augmented: beam.PCollection  # one int: originals + samples kept within their source
    deduplicated: beam.PCollection  # one int: rows after dedup
    shards: beam.PCollection  # (shard file, rows) per shard
    dead: beam.PCollection  # one dict: dead letters per reason
    vocabulary: beam.PCollection  # the POS vocabulary's file was written


def _versions() -> dict[str, str]:
    from augment.tagger import DEFAULT_MODELS

    out = {"python": sys.version.split()[0]}
    for pkg in ("transferset", "apache-beam", "pyarrow", "datasets", "spacy", "numpy", "torch",
                "transformers", *DEFAULT_MODELS):  # fmt: skip
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with FileSystems.open(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count(plan: Plan, read, tagged, augmented, deduplicated, written, reasons) -> Counts:
    """``Counts`` from what the stages produced; refuses counts that do not add up."""
    dead = sum(reasons.values())
    drawn = tagged * plan.augment.n_iter
    counts = Counts(
        read=read,
        dead_lettered=dead,
        duplicate_ids=reasons.get("duplicate id", 0),
        tagged=tagged,
        drawn=drawn,
        sampled=augmented - tagged,
        dropped_in_source=drawn - (augmented - tagged),
        duplicates_dropped=augmented - deduplicated,
        written=written,
        originals_written=tagged,
        samples_written=written - tagged,
    )
    if read != tagged + dead or written != deduplicated:
        raise RuntimeError(f"rows were lost between stages (a bug): {counts}")
    if tagged == 0:
        raise ValueError(
            f"no rows to write: {read} read, {dead} dead-lettered {reasons or ''}; nothing "
            f"was written and --out {plan.out!r} is as it was"
        )
    return counts


def _finish(_, plan: Plan, staging: str, commit, started: float, **produced) -> dict:
    if commit is not None and not FileSystems.exists(staging):  # a retry after the commit
        return read_manifest(commit.out).to_dict()
    shards = dict(produced.pop("shards"))
    reasons = produced.pop("dead")
    produced.pop("vocabulary")
    counts = count(plan, written=sum(shards.values()), reasons=reasons, **produced)
    spec = plan.spec
    manifest = Manifest(
        task=spec.name,
        label_names=list(spec.label_names) if spec.label_names else None,
        regression=spec.is_regression,
        input=plan.paths,
        format=plan.fmt,
        augment=plan.augment.to_dict(),
        seed=plan.augment.seed,
        spacy_model=plan.spacy_model,
        limit=plan.limit,
        num_shards=len(shards),
        shard_format=plan.shard_format,
        scale=plan.scale.__dict__,
        teacher=plan.teacher.info | {"rows": counts.written} if plan.teacher else None,
        counts=counts,
        dead_letter_reasons=reasons,
        wall_seconds=round(time.time() - started, 3),
        shards={s: _sha256(posixpath.join(staging, s)) for s in sorted(shards)},
        versions=_versions(),
        beam_options=plan.beam_args,
        command=plan.command,
    )
    write_set_files(staging, manifest, features_for(spec, with_logits=plan.teacher is not None))
    if commit is not None:
        commit()
    return manifest.to_dict()


class FinishTransferSet(beam.PTransform):
    """``Produced`` -> the manifest (one dict), once the set's files are all in ``staging``;
    with a ``Committer``, the staged set is then put at the plan's ``out``."""

    def __init__(self, plan: Plan, staging: str, commit: Committer | None = None):
        super().__init__()
        self.plan, self.staging, self.commit = plan, staging, commit
        self.started = time.time()

    def expand(self, produced):
        produced = Produced(*produced)
        single = beam.pvalue.AsSingleton
        return (
            produced.read.pipeline
            | "Once" >> beam.Create([None])
            | "WriteSetFiles"
            >> beam.Map(
                _finish,
                self.plan,
                self.staging,
                self.commit,
                self.started,
                read=single(produced.read),
                tagged=single(produced.tagged),
                augmented=single(produced.augmented),
                deduplicated=single(produced.deduplicated),
                shards=beam.pvalue.AsList(produced.shards),
                dead=single(produced.dead),
                vocabulary=beam.pvalue.AsList(produced.vocabulary),
            ).with_output_types(dict)
        )


# -- after a run the driver waited for ----------------------------------------------------------
def _metrics(result) -> tuple[dict[str, int], dict[str, int]]:
    """Counter totals, and the largest value of each distribution (rows a worker held)."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    totals: Counter = Counter()
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] += value or 0
    peaks: dict[str, int] = {}
    for d in query["distributions"]:
        value = d.committed if d.committed is not None else d.attempted
        if value is not None and value.count:
            peaks[d.key.metric.name] = max(peaks.get(d.key.metric.name, 0), value.max)
    return dict(totals), peaks


def with_metrics(manifest: Manifest, plan: Plan, result, wall: float) -> Manifest:
    """The manifest with what Beam's metrics add: busy seconds per stage, the rows a worker
    held at most, and the teacher's work (texts scored, cache hits, what the workers ran)."""
    counts, peaks = _metrics(result)
    c = manifest.counts
    for name, value in (("read", c.read), ("tagged", c.tagged), ("written", c.written)):
        if counts.get(name, value) != value:  # a runner that retried bundles counts them twice
            logger.warning("metric %s = %d, the data says %d", name, counts[name], value)
    teacher = manifest.teacher and manifest.teacher | _teacher_info(plan.teacher, counts)
    return replace(
        manifest,
        teacher=teacher,
        max_rows_held={
            "dedup_bucket": peaks.get("dedup_rows_held", 0),
            "shard": peaks.get("shard_rows_held", 0),
        },
        stage_busy_seconds={s: round(counts.get(f"{s}_busy_us", 0) / 1e6, 3) for s in STAGES},
        wall_seconds=round(wall, 3),
    )


def _teacher_info(teacher: TeacherPlan, counts: dict) -> dict:
    busy = counts.get("teacher_busy_us", 0) / 1e6
    ran = {k[len(RAN_PREFIX) :]: v for k, v in counts.items() if k.startswith(RAN_PREFIX)}
    return {
        "ran": ran,  # "dtype/device": rows, as the workers really ran
        "scored": counts.get("teacher_scored", 0),
        "cache_hits": counts.get("teacher_cache_hits", 0),
        "cache_folders": [folder for folder, _ in _caches(teacher, ran)],
        "cache_parts_bad": counts.get("teacher_cache_parts_bad", 0),
        "cache_unsaved": counts.get("teacher_cache_unsaved", 0),
        "cache_parts_written": counts.get("teacher_cache_parts", 0),
        "forward_passes": counts.get("teacher_forward_passes", 0),
        "truncated": counts.get("teacher_truncated", 0),
        "busy_seconds": round(busy, 3),
        "scored_per_second": round(counts.get("teacher_scored", 0) / busy, 1) if busy else None,
    }


def _caches(teacher: TeacherPlan, ran: dict[str, int]) -> list[tuple[str, dict]]:
    """``(folder, fields)`` of the cache each ``dtype/device`` the workers ran with used."""
    if teacher.cache_root is None:
        return []
    out = []
    for runtime in sorted(ran):
        dtype, _, device = runtime.partition("/")
        fields = logits_cache.runtime_fields(teacher.cache_fields, dtype, device)
        out.append((logits_cache.cache_folder(teacher.cache_root, fields), fields))
    return out


def compact_caches(teacher: TeacherPlan, ran: dict[str, int]) -> None:
    """Merge small cache parts after the set is in place; a failure here (another build
    compacting, a full disk) costs only speed later: a warning, and the build has succeeded."""
    for folder, fields in _caches(teacher, ran):
        try:
            cache_compaction.compact(folder, fields)
        except Exception as exc:  # noqa: BLE001 - the set is complete whatever happens here
            reason = preflight.one_line(exc)
            logger.warning("could not compact the logits cache %s: %s", folder, reason)
