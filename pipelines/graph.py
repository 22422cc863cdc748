"""The build as one Beam graph: read -> tag -> augment -> dedup -> teacher -> shards.

Every stage passes the next the names of files it wrote (``exchange.py``), never rows.
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.options import Plan
from pipelines.shards import WriteArrowShards, WriteDeadLetters, features_for
from pipelines.stages import (
    AugmentExamples,
    BuildPosVocabulary,
    CountRows,
    DeduplicateSamples,
    ReadExamples,
    TagExamples,
)
from pipelines.teacher_stage import AttachTeacherLogits
from pipelines.transfer_set import DEAD_LETTER, POS_VOCABULARY


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
        _write_text, posixpath.join(staging, POS_VOCABULARY)
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
        | "WriteDeadLetters" >> WriteDeadLetters(posixpath.join(staging, DEAD_LETTER), work)
    )


def _write_text(vocab, path: str) -> None:
    with FileSystems.create(path) as f:
        f.write(vocab.to_json().encode("utf-8"))
