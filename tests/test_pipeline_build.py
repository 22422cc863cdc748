"""`transferset build` end to end on real GLUE text with the real spaCy model."""

from __future__ import annotations

import glob
import json
import os
from collections import Counter
from pathlib import Path

import apache_beam as beam
import datasets
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import FIX, build_set, head

from augment.tasks import get_task
from pipelines import build, shards
from pipelines.records import Row
from pipelines.stages import DeduplicateSamples
from transferset_cli import main as cli_main


@pytest.fixture(scope="module")
def sst2_300(glue_dir, tmp_path_factory):
    return head(glue_dir / "SST-2" / "train.tsv", tmp_path_factory.mktemp("in") / "sst2.tsv", 300)


@pytest.fixture(scope="module")
def sst2_built(sst2_300, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "sst2"
    build_set("sst2", sst2_300, out, n_iter=8, num_shards=3)
    return out


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_sst2_shards_load_with_datasets(sst2_built):
    out = sst2_built
    ds = datasets.load_from_disk(str(out))
    files = sorted(glob.glob(str(out / "data-*.arrow")))
    assert [os.path.basename(f) for f in files] == [
        f"data-0000{k}-of-00003.arrow" for k in range(3)
    ]
    other = datasets.load_dataset("arrow", data_files=files, split="train")
    m = manifest(out)
    assert len(ds) == len(other) == m["counts"]["written"]
    assert ds.features["label"].names == ["negative", "positive"]
    assert other.features == ds.features
    originals = ds.filter(lambda r: r["is_original"])
    assert Counter(originals["source_id"]) == Counter(str(k) for k in range(300))
    assert m["counts"]["read"] == 300 and m["counts"]["originals_written"] == 300
    samples = ds.filter(lambda r: not r["is_original"])
    assert len(samples) == m["counts"]["samples_written"] > 1000
    assert set(samples["label"]) == {-1}
    assert all(ops for ops in samples["ops"]) and set(originals["ops"]) == {""}
    assert all(t is None for t in ds["text_b"])
    # ids: {source_id} for originals, {source_id}-{i} for samples with i < n_iter
    for row_id, sid in zip(samples["id"], samples["source_id"], strict=True):
        prefix, _, i = row_id.rpartition("-")
        assert prefix == sid and 0 <= int(i) < 8
    # no sample repeats a text of any other row
    texts = Counter(t.strip() for t in ds["text_a"])
    for t in samples["text_a"]:
        assert texts[t.strip()] == 1, t


def test_rows_are_sorted_and_sharded_by_id(sst2_built):
    from augment.seeding import stable_hash64
    from pipelines.records import row_sort_key

    for k in range(3):
        part = datasets.Dataset.from_file(str(sst2_built / f"data-0000{k}-of-00003.arrow"))
        rows = [Row(**r) for r in part.select_columns(list(Row._fields))]
        assert rows == sorted(rows, key=row_sort_key)
        assert all(stable_hash64(r.id) % 3 == k for r in rows)


def test_mrpc_pairs(glue_dir, tmp_path):
    src = head(glue_dir / "MRPC" / "train.tsv", tmp_path / "mrpc.tsv", 100)
    out = tmp_path / "mrpc"
    assert (
        cli_main(
            ["build", "--task", "mrpc", "--input", str(src), "--out", str(out), "--n-iter", "6"]
        )
        == 0
    )
    ds = datasets.load_from_disk(str(out))
    assert ds.features["label"].names == ["not_equivalent", "equivalent"]
    originals = ds.filter(lambda r: r["is_original"])
    assert sorted(originals["source_id"], key=int) == [str(k) for k in range(100)]
    assert all(a and b for a, b in zip(ds["text_a"], ds["text_b"], strict=True))
    assert len(ds) == manifest(out)["counts"]["written"]
    # sample i augments A (i % 3 == 0), B (1) or both (2): the untouched side is the original's
    by_source = {r["source_id"]: r for r in originals}
    for r in ds.filter(lambda r: not r["is_original"]):
        i = int(r["id"].rsplit("-", 1)[1])
        o = by_source[r["source_id"]]
        if i % 3 == 0:
            assert r["text_b"] == o["text_b"].strip()
        elif i % 3 == 1:
            assert r["text_a"] == o["text_a"].strip()


def test_one_worker_and_two_processes_write_identical_bytes(sst2_300, sst2_built, tmp_path):
    out = tmp_path / "mp"
    build_set(
        "sst2",
        sst2_300,
        out,
        n_iter=8,
        num_shards=3,
        beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    for k in range(3):
        name = f"data-0000{k}-of-00003.arrow"
        assert (out / name).read_bytes() == (sst2_built / name).read_bytes()
    assert manifest(out)["counts"] == manifest(sst2_built)["counts"]


def test_bad_input_is_dead_lettered_and_counts_add_up(tmp_path):
    src = tmp_path / "bad.tsv"
    src.write_bytes(
        b"sentence\tlabel\n"
        b"a fine film .\t1\n"
        b"ragged\t1\t2\n"
        b" \t0\n"
        b"odd label\tmaybe\n"
        b"latin-1 caf\xe9 .\t1\n" + b"very " * 40 + b"long .\t0\n"
        b"a dull film .\t0\n"
    )
    out = tmp_path / "out"
    build_set("sst2", src, out, max_tokens=30)
    dead = [
        json.loads(x) for x in (out / "dead_letter" / "dead_letter.jsonl").read_text().splitlines()
    ]
    reasons = {d["line_number"]: d["reason"] for d in dead}
    assert set(dead[0]) == {"source", "line_number", "raw", "reason"}
    assert reasons[3].startswith("ragged line")
    assert reasons[4] == "empty text_a"
    assert reasons[5].startswith("unknown label")
    assert reasons[6].startswith("not UTF-8")
    assert reasons[7].startswith("too long: text_a has 42 tokens, max_tokens=30")
    m = manifest(out)
    c = m["counts"]
    assert c["read"] == 7 and c["dead_lettered"] == 5 and c["originals_written"] == 2
    assert c["read"] == c["originals_written"] + c["dead_lettered"]
    assert m["dead_letter_reasons"] == {
        "empty text_a": 1,
        "not UTF-8": 1,
        "ragged line": 1,
        "too long": 1,
        "unknown label": 1,
    }
    ds = datasets.load_from_disk(str(out))
    assert sorted(ds.filter(lambda r: r["is_original"])["text_a"]) == [
        "a dull film .",
        "a fine film .",
    ]


def test_errors_before_any_work(sst2_300, sst2_built, tmp_path, capsys):
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_set("sst2", sst2_300, sst2_built)
    with pytest.raises(ValueError, match="unknown task 'sst3'; known tasks: cola"):
        build_set("sst3", sst2_300, tmp_path / "x")
    assert (
        cli_main(
            [
                "build",
                "--task",
                "sst2",
                "--input",
                str(tmp_path / "nope.tsv"),
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_failed_build_leaves_no_complete_looking_shard(sst2_300, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []
    real_write = shards.write_table

    def dying_write(table, path, features=None):
        calls.append(path)
        if len(calls) == 2:  # the second shard dies half-written
            Path(path).write_bytes(b"ARROW1-partial")
            raise RuntimeError("injected failure while writing a shard")
        real_write(table, path, features)

    monkeypatch.setattr(shards, "write_table", dying_write)
    with pytest.raises(Exception, match="injected failure"):
        build_set("sst2", sst2_300, out, n_iter=2, num_shards=3, limit=50)
    assert len(calls) >= 2
    assert glob.glob(str(out / "**" / "data-*.arrow"), recursive=True) == []
    assert not (out / "state.json").exists() and not (out / "manifest.json").exists()
    monkeypatch.setattr(shards, "write_table", real_write)
    build_set("sst2", sst2_300, out, n_iter=2, num_shards=3, limit=50, overwrite=True)
    assert len(datasets.load_from_disk(str(out))) == manifest(out)["counts"]["written"]


def test_overwrite_replaces_the_previous_set(sst2_300, tmp_path):
    out = tmp_path / "out"
    common = ["--task", "sst2", "--input", str(sst2_300), "--out", str(out), "--limit", "20"]
    build.run([*common, "--num-shards", "3", "--n-iter", "2"])
    build.run([*common, "--num-shards", "1", "--n-iter", "3", "--overwrite"])
    assert sorted(p.name for p in out.glob("data-*.arrow")) == ["data-00000-of-00001.arrow"]
    assert manifest(out)["augment"]["n_iter"] == 3
    assert [p.name for p in out.iterdir() if p.name.startswith(".staging")] == []


def test_deduplicate_samples_keeps_originals_then_the_smallest_id(tmp_path):
    from pipelines.exchange import read_table, spill_table
    from pipelines.stages import rows_to_table

    rows = [
        Row("2", "2", "a film . ", None, 1, True, ""),
        Row("10", "10", "a film .", None, 0, True, ""),  # the same text: both originals stay
        Row("3-1", "3", "a film .", None, -1, False, "mask"),  # equals an original: dropped
        Row("10-4", "10", "[MASK] film", None, -1, False, "mask+ngram"),
        Row("9-7", "9", "[MASK] film", None, -1, False, "mask+ngram"),  # 9 < 10: this one stays
        Row("9-1", "9", "film", None, -1, False, "ngram"),
    ]
    schema = shards.features_for(get_task("sst2"), with_logits=False).arrow_schema
    files = [
        spill_table(str(tmp_path), "in", rows_to_table(part, schema))
        for part in (rows[:3], rows[3:])
    ]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        kept = (
            p
            | beam.Create([(7, files[0]), (7, files[1])])  # one bucket, two files
            | DeduplicateSamples(schema, str(tmp_path))
            | beam.Map(lambda h: read_table(h.path).column("id").to_pylist())
        )
        # one list per bucket, in natural id order: 2 < 9 < 10, a source's samples by index
        assert_that(kept, equal_to([["2", "9-1", "9-7", "10"]]))


def test_a_glob_of_several_files_keeps_ids_apart(tmp_path):
    for name in ("part-a.tsv", "part-b.tsv"):
        (tmp_path / name).write_bytes((FIX / "sst2_train.tsv").read_bytes())
    out = tmp_path / "out"
    build_set("sst2", tmp_path / "part-*.tsv", out, n_iter=2)
    originals = datasets.load_from_disk(str(out)).filter(lambda r: r["is_original"])
    assert sorted(originals["source_id"]) == sorted(
        f"part-{p}.tsv:{k}" for p in "ab" for k in range(5)
    )
    assert manifest(out)["counts"]["read"] == 10
