"""``BuildTransferSet`` in a user's own pipeline: the same set as the file build, every bad
element a dead letter, and the stage that takes elements tested the Beam way."""

from __future__ import annotations

import csv
import hashlib
import json

import apache_beam as beam
import datasets
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import build_set, head

from pipelines import BuildOptions, BuildTransferSet
from pipelines.read_stage import ELEMENTS, FromElements
from pipelines.records import DeadLetter
from pipelines.settings import ScaleConfig


def _pipeline():
    return test_pipeline.TestPipeline(runner="FnApiRunner")


def _sst2_examples(path, n):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1 : n + 1]
    return [{"id": str(i), "text_a": a, "label": int(y)} for i, (a, y) in enumerate(rows)]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("data-*")}


def test_a_set_built_in_a_users_pipeline_opens_and_equals_the_file_build(glue_dir, tmp_path):
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 120)
    examples = _sst2_examples(src, 120)
    out = tmp_path / "kd"
    with _pipeline() as p:
        manifest = (
            p
            | beam.Create(examples)
            | BuildTransferSet(BuildOptions(task="sst2", out=str(out), n_iter=2, num_shards=2))
        )
        assert_that(
            manifest | beam.Map(lambda m: (m["counts"]["read"], m["counts"]["originals_written"])),
            equal_to([(120, 120)]),
        )
    ds = datasets.load_from_disk(str(out))
    assert ds.features["label"].names == ["negative", "positive"]
    assert sum(ds["is_original"]) == 120 and len(ds) > 120
    written = json.loads((out / "manifest.json").read_text())
    assert written["format"] == "elements" and written["counts"]["written"] == len(ds)
    card = (out / "README.md").read_text()
    assert "a PCollection of examples" in card and "split_by_source(ds, test_size, seed)" in card
    assert not list(tmp_path.glob("kd.staging-*/")), "the staging folder was left behind"
    # the same rows as a file build of the same text: the same bytes (row ids = row numbers)
    build_set("sst2", src, tmp_path / "from-file", n_iter=2, num_shards=2)
    assert _digests(out) == _digests(tmp_path / "from-file")


def test_rows_and_dicts_give_the_same_set_and_bad_elements_are_dead_letters(glue_dir, tmp_path):
    good = _sst2_examples(glue_dir / "SST-2" / "train.tsv", 40)
    for kind, elements in (("dicts", good), ("rows", [beam.Row(**e) for e in good])):
        with _pipeline() as p:
            _ = (
                p
                | beam.Create(elements)
                | BuildTransferSet(BuildOptions(task="sst2", out=str(tmp_path / kind), n_iter=1))
            )
    assert _digests(tmp_path / "dicts") == _digests(tmp_path / "rows")

    bad = [
        "a bare string",
        {"text_a": "", "label": 1},
        {"text_a": "fine words", "label": 7},
        {"text_b": "no text_a", "label": 0},
        {"text_a": 3, "label": 0},
        {"id": "0", "text_a": "zz: a second row with id 0", "label": 1},
    ]
    unlabelled = [{"text_a": "no gold here at all"}, {"text_a": "nor here", "label": None}]
    unlabelled += [{"text_a": "twice the same", "label": 1}] * 2  # no id: one hash id
    out = tmp_path / "mixed"
    with _pipeline() as p:
        _ = (
            p
            | beam.Create(good + bad + unlabelled, reshuffle=False).with_output_types(object)
            | BuildTransferSet(BuildOptions(task="sst2", out=str(out), n_iter=1))
        )
    m = json.loads((out / "manifest.json").read_text())
    c = m["counts"]
    assert c["read"] == 50 and c["dead_lettered"] == 7 and c["originals_written"] == 43
    assert m["dead_letter_reasons"] == {
        "duplicate id": 2, "empty text_a": 1, "missing text_a": 1, "not an example": 1,
        "not text": 1, "unknown label": 1,
    }  # fmt: skip
    ds = datasets.load_from_disk(str(out))
    originals = ds.filter(lambda r: r["is_original"])
    assert sorted(originals["label"]).count(-1) == 2  # unlabelled stays unlabelled
    # of two elements with one id, the one whose text sorts first stays, whatever the order
    assert originals.filter(lambda r: r["id"] == "0")["text_a"] == [good[0]["text_a"]]
    letters = [json.loads(x) for x in (out / "dead_letter" / "dead_letter.jsonl").open()]
    assert {d["source"] for d in letters} == {ELEMENTS}
    assert any("a bare string" in d["raw"] for d in letters)
    assert any("no id given: the same texts and label twice" in d["reason"] for d in letters)


def test_from_elements_counts_and_refuses_the_beam_way(tmp_path):
    from augment.tasks import get_task

    work = tmp_path / "work"
    work.mkdir()
    elements = [{"text_a": f"words {i}", "label": i % 2} for i in range(30)]
    elements += [{"text_a": "  ", "label": 0}, 42]
    with _pipeline() as p:
        batches, dead, read = (
            p
            | beam.Create(elements)
            | FromElements(get_task("sst2"), str(work), 4, ScaleConfig(batch_size=8))
        )
        assert_that(read, equal_to([32]), label="read")
        assert_that(
            dead | beam.Map(lambda d: d.reason.split(":")[0]),
            equal_to(["empty text_a", "not an example"]),
            label="dead",
        )
        assert_that(
            batches | beam.Map(lambda h: h.rows) | beam.CombineGlobally(sum),
            equal_to([30]),
            label="rows",
        )
        assert_that(dead | beam.Map(type), equal_to([DeadLetter, DeadLetter]), label="types")


def test_bad_options_fail_when_the_transform_is_applied(tmp_path):
    with pytest.raises(ValueError, match="leave input"):
        with _pipeline() as p:
            _ = (
                p
                | beam.Create([])
                | BuildTransferSet(
                    BuildOptions(task="sst2", out=str(tmp_path / "x"), input="a.tsv")
                )
            )
    with pytest.raises(ValueError, match="leave input, format, limit"):
        with _pipeline() as p:
            _ = (
                p
                | beam.Create([])
                | BuildTransferSet(BuildOptions(task="sst2", out=str(tmp_path / "x"), limit=5))
            )
    with pytest.raises(ValueError, match="no rows to write"):
        with _pipeline() as p:
            _ = (
                p
                | beam.Create(["x"])
                | BuildTransferSet(BuildOptions(task="sst2", out=str(tmp_path / "y")))
            )
    assert not (tmp_path / "y").exists()
    # the type hints are checked when the pipeline is built: the manifest is a dict, not an int
    with pytest.raises(beam.typehints.TypeCheckError, match="Dict"):
        p = _pipeline()
        manifest = (
            p
            | beam.Create([])
            | BuildTransferSet(BuildOptions(task="sst2", out=str(tmp_path / "z")))
        )
        _ = manifest | beam.Map(lambda n: n + 1).with_input_types(int)


def test_a_retried_finishing_step_after_its_commit_returns_the_committed_manifest(tmp_path):
    """A runner may retry the last step after its commit succeeded: the set stays as it is."""
    from pipelines.finish import _finish
    from pipelines.outdir import Committer
    from pipelines.transfer_set import Counts, Manifest, write_set_files

    out = tmp_path / "kd"
    out.mkdir()
    from augment import AugmentConfig
    from augment.tasks import get_task

    counts = Counts(read=3, tagged=3, written=3)
    augment = AugmentConfig().to_dict()
    manifest = Manifest(
        "sst2", ["negative", "positive"], False, [], "elements", augment, 0, "x", counts
    )
    from pipelines.shards import features_for

    write_set_files(str(out), manifest, features_for(get_task("sst2"), False))
    gone = str(tmp_path / "kd.staging-gone")
    commit = Committer(gone, str(out), None, False)
    again = _finish(None, None, gone, commit, 0.0)
    assert again["counts"]["written"] == 3 and (out / "manifest.json").exists()
