"""The end of a build: Beam's counters become ``Counts`` and a ``Manifest``, the set's JSON
files are written beside its staged shards, and the logits cache is compacted."""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import sys
from collections import Counter
from importlib import metadata

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines import exchange, logits_cache, preflight
from pipelines.meter import NAMESPACE
from pipelines.options import Plan, TeacherPlan
from pipelines.shards import features_for
from pipelines.teacher_stage import RAN_PREFIX
from pipelines.transfer_set import DATA_GLOB, DEAD_LETTER, Counts, Manifest, write_set_files

logger = logging.getLogger(__name__)
STAGES = ("read", "tagged", "sampled", "deduplicated", "teacher", "written")


def _versions() -> dict[str, str]:
    from augment.tagger import DEFAULT_MODELS

    out = {"python": sys.version.split()[0]}
    for pkg in (
        "transferset",
        "apache-beam",
        "pyarrow",
        "datasets",
        "spacy",
        "numpy",
        "torch",
        "transformers",
        *DEFAULT_MODELS,
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


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


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with FileSystems.open(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dead_letter_reasons(path: str) -> tuple[int, Counter]:
    n, reasons = 0, Counter()
    with FileSystems.open(path) as f:
        for line in f:
            n += 1
            reasons[json.loads(line)["reason"].split(":")[0]] += 1
    return n, reasons


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
            logits_cache.compact(folder, fields)
        except Exception as exc:  # noqa: BLE001 - the set is complete whatever happens here
            reason = preflight.one_line(exc)
            logger.warning("could not compact the logits cache %s: %s", folder, reason)


def finish(plan: Plan, result, staging: str, wall: float) -> Manifest:
    """Check the counts, write the JSON files beside the staged shards; the manifest."""
    counts, peaks = _metrics(result)
    spec = plan.spec
    shards = [posixpath.basename(p) for p in exchange.match(posixpath.join(staging, DATA_GLOB))]
    dead, reasons = _dead_letter_reasons(posixpath.join(staging, DEAD_LETTER))
    tagged, written = counts.get("tagged", 0), counts.get("written", 0)
    summary = Counts(
        read=counts.get("read", 0),
        dead_lettered=dead,
        duplicate_ids=counts.get("duplicate_ids", 0),
        tagged=tagged,
        drawn=counts.get("drawn", 0),
        sampled=counts.get("sampled", 0),
        dropped_in_source=counts.get("drawn", 0) - counts.get("sampled", 0),
        duplicates_dropped=counts.get("duplicates_dropped", 0),
        written=written,
        originals_written=tagged,
        samples_written=written - tagged,
    )
    if summary.read != summary.originals_written + summary.dead_lettered:
        raise RuntimeError(f"counts do not add up (a bug): {summary}")
    if summary.originals_written == 0:
        raise ValueError(
            f"no rows to write: {summary.read} read, {dead} dead-lettered "
            f"{dict(reasons) or ''}; nothing was written and --out {plan.out!r} is as it was"
        )
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
        scale=plan.scale.__dict__,
        max_rows_held={
            "dedup_bucket": peaks.get("dedup_rows_held", 0),
            "shard": peaks.get("shard_rows_held", 0),
        },
        teacher=_teacher_info(plan.teacher, counts) if plan.teacher else None,
        counts=summary,
        dead_letter_reasons=dict(sorted(reasons.items())),
        stage_busy_seconds={s: round(counts.get(f"{s}_busy_us", 0) / 1e6, 3) for s in STAGES},
        wall_seconds=round(wall, 3),
        shards={s: _sha256(posixpath.join(staging, s)) for s in shards},
        versions=_versions(),
        beam_options=plan.beam_args,
        command=plan.command,
    )
    write_set_files(staging, manifest, features_for(spec, with_logits=plan.teacher is not None))
    return manifest


def _teacher_info(teacher: TeacherPlan, counts: dict) -> dict:
    busy = counts.get("teacher_busy_us", 0) / 1e6
    ran = {k[len(RAN_PREFIX) :]: v for k, v in counts.items() if k.startswith(RAN_PREFIX)}
    return teacher.info | {
        "ran": ran,  # "dtype/device": rows, as the workers really ran
        "rows": counts.get("teacher", 0),
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
