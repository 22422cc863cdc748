"""The build as one Beam graph: read -> tag -> augment -> dedup -> teacher -> shards -> finish.

Every stage passes the next the names of files it wrote (``exchange.py``), never rows. The
graph ends in ``FinishTransferSet``, which counts what each stage produced from the data itself
and writes the set's JSON files and card beside the shards, inside the pipeline, so that
``BuildTransferSet`` in a user's pipeline and ``build_transfer_set`` make the same set.
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.finish import Committer, FinishTransferSet, Produced
from pipelines.options import Plan
from pipelines.read_stage import ReadExamples
from pipelines.shards import WriteArrowShards, WriteDeadLetters, features_for
from pipelines.stages import (
    AugmentExamples,
    BuildPosVocabulary,
    CountRows,
    DeduplicateSamples,
    TagExamples,
)
from pipelines.teacher_stage import AttachTeacherLogits
from pipelines.transfer_set import DEAD_LETTER, POS_VOCABULARY


def read_files(p: beam.Pipeline, plan: Plan, work: str):
    """The plan's input files -> ``(batches, dead letters, rows read)``."""
    return p | "ReadExamples" >> ReadExamples(
        plan.paths,
        plan.spec,
        plan.fmt,
        plan.columns,
        plan.limit,
        work,
        plan.id_buckets,
        plan.scale,
        plan.augment.max_chars,
    )


def stages(read, plan: Plan, staging: str, work: str) -> Produced:
    """``(batches, dead letters, rows read)`` -> a set's shards, dead letters and vocabulary in
    ``staging``; returns what the finishing step counts."""
    batches, dead_read, rows_read = read
    scale, spec = plan.scale, plan.spec
    features = features_for(spec, with_logits=plan.teacher is not None)
    rows_schema = features_for(spec, with_logits=False).arrow_schema
    tagged, vocabularies, dead_tag = batches | "TagExamples" >> TagExamples(
        plan.spacy_model, plan.augment.tag_scheme, plan.augment.max_tokens, work
    )
    vocab = vocabularies | "BuildPosVocabulary" >> BuildPosVocabulary()
    vocab_written = vocab | "WritePosVocabulary" >> beam.Map(
        _write_text, posixpath.join(staging, POS_VOCABULARY)
    )
    sources = tagged | "CountSources" >> CountRows()
    keyed = tagged | "AugmentExamples" >> AugmentExamples(
        vocab, sources, plan.augment, spec.unlabelled, rows_schema, work, scale
    )
    rows = keyed | "DeduplicateSamples" >> DeduplicateSamples(rows_schema, work)
    deduplicated = rows | "CountKept" >> CountRows()
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
    shards = rows | "WriteArrowShards" >> WriteArrowShards(
        staging, features, work, plan.num_shards, scale.max_shard_rows, plan.shard_format
    )
    dead = (
        (dead_read, dead_tag)
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteDeadLetters(posixpath.join(staging, DEAD_LETTER), work)
    )
    augmented = (
        keyed | "AugmentedRows" >> beam.Map(lambda kv: kv[1]) | "CountAugmented" >> CountRows()
    )
    return Produced(rows_read, sources, augmented, deduplicated, shards, dead, vocab_written)


def graph(p: beam.Pipeline, plan: Plan, staging: str, work: str, commit: Committer | None = None):
    """The whole build from the plan's files; returns the manifest (one dict)."""
    produced = stages(read_files(p, plan, work), plan, staging, work)
    return produced | "FinishTransferSet" >> FinishTransferSet(plan, staging, commit)


def _write_text(vocab, path: str) -> None:
    with FileSystems.create(path) as f:
        f.write(vocab.to_json().encode("utf-8"))
