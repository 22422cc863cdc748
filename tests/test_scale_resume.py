"""Corpus-scale build: resume after kill -9, safe --overwrite, a cache that cannot lie, ids.

Kill tests run real build processes and kill their whole process group with SIGKILL.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest
from conftest import FIX, build_set, head, make_tiny_teacher

from pipelines import logits_cache
from pipelines.cache_compaction import compact
from pipelines.logits_cache import LogitsCache, cache_key, write_part
from pipelines.records import Row, row_sort_key, source_sort_key

ROOT = Path(__file__).resolve().parents[1]
SHARED_TEACHER = ROOT.parent / "shared" / "models" / "sst2-minilm"


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("data-*.arrow"))}


def start_build(args: list[str], log: Path) -> subprocess.Popen:
    """``transferset build ARGS`` in its own process group (so kill -9 takes it all)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "transferset_cli", "build", *args],
        stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


# -- resume ---------------------------------------------------------------------------------------
def test_a_killed_build_resumes_and_matches_an_uninterrupted_one(glue_dir, tmp_path):
    if not SHARED_TEACHER.exists():
        pytest.skip(f"{SHARED_TEACHER} is absent: the reference teacher lives in ../shared/models")
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 300)
    cache = tmp_path / "cache"
    common = ["--task", "sst2", "--input", str(src), "--n-iter", "8", "--num-shards", "2"]
    common += ["--teacher", str(SHARED_TEACHER), "--teacher-chunk-rows", "100"]
    common += ["--teacher-threads", "2"]
    out = tmp_path / "resumed"
    proc = start_build([*common, "--out", str(out), "--teacher-cache", str(cache)], tmp_path / "1")
    deadline = time.time() + 300
    parts: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        parts = list(cache.glob("*/part-*.arrow"))
        if len(parts) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "1").read_text()[-2000:]  # still in the teacher
    kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    done = len(list(cache.glob("*/part-*.arrow")))
    assert done >= 3
    assert not out.exists()  # nothing that looks like a set
    stale = list(tmp_path.glob("resumed.staging-*"))
    assert stale  # the killed build's staging folder is still there ...

    proc = start_build([*common, "--out", str(out), "--teacher-cache", str(cache)], tmp_path / "2")
    assert proc.wait(timeout=600) == 0, (tmp_path / "2").read_text()[-3000:]
    assert not [p for p in tmp_path.glob("resumed.staging-*") if p.exists()]  # ... until now
    m = manifest(out)
    t = m["teacher"]
    written = m["counts"]["written"]
    # every finished chunk came from the cache; only the missing ones went to the model
    assert t["cache_hits"] >= done * 100
    assert t["scored"] == written - t["cache_hits"] and 0 < t["scored"] < written

    whole = tmp_path / "whole"  # the same build, never killed, with a cache of its own
    proc = start_build(
        [*common, "--out", str(whole), "--teacher-cache", str(tmp_path / "c2")], tmp_path / "3"
    )
    assert proc.wait(timeout=600) == 0, (tmp_path / "3").read_text()[-3000:]
    assert manifest(whole)["teacher"]["scored"] == written
    assert shard_bytes(out) == shard_bytes(whole)  # same rows, same logits, same bytes
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == written and len(ds[0]["teacher_logits"]) == 2


# -- overwrite ------------------------------------------------------------------------------------
def _complete_set(out: Path) -> int:
    """The set's n_iter, after checking every file a set needs is there and loads."""
    for name in ("state.json", "dataset_info.json", "manifest.json"):
        assert (out / name).exists(), name
    m = manifest(out)
    assert len(datasets.load_from_disk(str(out))) == m["counts"]["written"]
    return m["augment"]["n_iter"]


def test_overwrite_killed_at_any_moment_leaves_the_old_or_the_new_set(tmp_path):
    src = FIX / "sst2_train.tsv"
    out = tmp_path / "out"
    build_set("sst2", src, out, n_iter=2)
    args = ["--task", "sst2", "--input", str(src), "--out", str(out), "--n-iter", "3"]
    args += ["--overwrite"]
    started = time.time()
    proc = start_build(args, tmp_path / "full")
    assert proc.wait(timeout=300) == 0
    full = time.time() - started
    assert _complete_set(out) == 3
    build_set("sst2", src, out, n_iter=2, overwrite=True)
    seen = set()
    for frac in (0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 1.0, 1.02):
        proc = start_build(args, tmp_path / f"k{frac}")
        time.sleep(full * frac)
        if proc.poll() is None:
            kill_group(proc)
        n_iter = _complete_set(out)  # never an empty or half-replaced folder
        seen.add(n_iter)
        if n_iter == 3:  # the new set landed: put the old one back for the next point
            build_set("sst2", src, out, n_iter=2, overwrite=True)
    assert seen <= {2, 3} and 2 in seen
    build_set("sst2", src, out, n_iter=2, overwrite=True)
    assert not list(tmp_path.glob("out.staging-*"))  # killed runs' folders cleaned up


def test_out_with_other_files_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a transfer set's.*notes.txt"):
        build_set("sst2", FIX / "sst2_train.tsv", out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


# -- the cache ------------------------------------------------------------------------------------
def test_cache_keys_cannot_collide_across_fields():
    pairs = [
        ("a\x00b", None),
        ("a", "b\x00\x01"),
        ("a", "b"),
        ("a\x00", "b"),
        ("ab", None),
        ("a", None),
        ("a", ""),
        ("", "a"),
        ("", None),
        ("a b", None),
    ]
    keys = [cache_key(a, b) for a, b in pairs]
    assert len(set(keys)) == len(pairs)
    assert all(len(k) == 16 for k in keys)
    assert cache_key("a", "b") == cache_key("a", "b")


def _fields(**over):
    base = {"weights_sha256": "w", "tokenizer_sha256": "t", "config_sha256": "c"}
    return base | {"max_length": 128, "dtype": "float32", "device": "cpu"} | over


def test_cache_parts_lookup_compact_and_refuse_a_foreign_part(tmp_path):
    fields = _fields()
    rng = np.random.default_rng(0)
    texts = [f"text {i}" for i in range(3000)]
    keys = [cache_key(t, None) for t in texts]
    logits = rng.standard_normal((3000, 3)).astype(np.float32)
    folder = str(tmp_path / "c")
    os.makedirs(folder)
    for k in range(0, 3000, 150):  # 20 parts, like 20 teacher chunks
        write_part(folder, keys[k : k + 150], logits[k : k + 150], fields)
    assert not list(Path(folder).glob(".tmp-*"))
    query = keys[::7] + [cache_key("never seen", None)]
    found, got = LogitsCache(folder, fields).lookup(query, 3)
    assert found.tolist() == [True] * len(keys[::7]) + [False]
    np.testing.assert_array_equal(got[:-1], logits[::7])
    assert compact(folder, fields, min_parts=16) == 20
    assert len(list(Path(folder).glob("part-*.arrow"))) == 1
    found2, got2 = LogitsCache(folder, fields).lookup(query, 3)
    assert found2.tolist() == found.tolist()
    np.testing.assert_array_equal(got2, got)
    foreign = write_part(
        folder, [cache_key("x", None)], np.ones((1, 3), np.float32), _fields(dtype="bf16")
    )
    cache = LogitsCache(folder, fields)  # a foreign part is moved aside, never read
    assert cache.bad == [foreign] and not os.path.exists(foreign)
    assert len(list(Path(folder, "corrupt").iterdir())) == 1
    np.testing.assert_array_equal(cache.lookup(query, 3)[1], got)


def test_the_cache_folder_follows_everything_that_changes_logits(tiny_teacher, tmp_path):
    sha = "0" * 64
    base = logits_cache.cache_fields(str(tiny_teacher), sha, 128)
    relabelled = tmp_path / "relabelled"
    shutil.copytree(tiny_teacher, relabelled)
    config = json.loads((relabelled / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}
    config["label2id"] = {"positive": 0, "negative": 1}
    (relabelled / "config.json").write_text(json.dumps(config))
    # label names only name the outputs: the raw logits (what the cache keeps) are the same
    assert logits_cache.cache_fields(str(relabelled), sha, 128) == base
    retok = tmp_path / "retok"
    shutil.copytree(tiny_teacher, retok)
    with open(retok / "vocab.txt", "a") as f:
        f.write("newword\n")
    run = logits_cache.runtime_fields
    others = [
        logits_cache.cache_fields(str(retok), sha, 128),
        logits_cache.cache_fields(str(tiny_teacher), "1" * 64, 128),
        logits_cache.cache_fields(str(tiny_teacher), sha, 64),
    ]
    fields = [run(f, "float32", "cpu") for f in [base, *others]]
    fields += [run(base, "bfloat16", "cpu"), run(base, "float32", "cuda")]
    folders = {logits_cache.cache_folder("root", f) for f in fields}
    assert len(folders) == 6


def test_a_relabelled_teacher_reuses_raw_logits_in_its_own_order(tmp_path):
    from test_teacher import direct_logits

    straight = make_tiny_teacher(tmp_path / "a", labels=("negative", "positive"), seed=5)
    flipped = make_tiny_teacher(tmp_path / "b", labels=("positive", "negative"), seed=5)
    cache = tmp_path / "cache"
    src = FIX / "sst2_train.tsv"
    for name, teacher in (("one", straight), ("two", flipped)):
        build_set(
            "sst2", src, tmp_path / name, n_iter=4, teacher=str(teacher), teacher_cache=str(cache)
        )
    one, two = manifest(tmp_path / "one"), manifest(tmp_path / "two")
    assert two["teacher"]["cache_hits"] == two["counts"]["written"]  # same weights: all cached
    assert two["teacher"]["scored"] == 0 and two["teacher"]["logit_order"] == [1, 0]
    ds1 = datasets.load_from_disk(str(tmp_path / "one"))
    ds2 = datasets.load_from_disk(str(tmp_path / "two"))
    a = np.array(ds1["teacher_logits"], dtype=np.float32)
    b = np.array(ds2["teacher_logits"], dtype=np.float32)
    # the flipped teacher says output 0 is "positive": its task-order logits are swapped
    np.testing.assert_array_equal(b, a[:, ::-1])
    raw = direct_logits(flipped, list(ds2["text_a"]))
    np.testing.assert_allclose(b, raw[:, ::-1], atol=1e-5)
    assert one["teacher"]["cache_key"] == two["teacher"]["cache_key"]


def test_another_tokenizer_misses_the_cache_and_pairs_hit_it(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=("not_equivalent", "equivalent"))
    cache = tmp_path / "cache"
    flags = {"n_iter": 3, "teacher_cache": str(cache)}
    build_set("mrpc", FIX / "mrpc_train.tsv", tmp_path / "one", teacher=str(teacher), **flags)
    build_set("mrpc", FIX / "mrpc_train.tsv", tmp_path / "two", teacher=str(teacher), **flags)
    second = manifest(tmp_path / "two")["teacher"]
    assert (
        second["scored"] == 0
        and second["cache_hits"] == manifest(tmp_path / "two")["counts"]["written"]
    )
    cased = tmp_path / "cased"
    shutil.copytree(teacher, cased)
    tok = json.loads((cased / "tokenizer_config.json").read_text())
    tok["do_lower_case"] = False
    (cased / "tokenizer_config.json").write_text(json.dumps(tok))
    build_set("mrpc", FIX / "mrpc_train.tsv", tmp_path / "three", teacher=str(cased), **flags)
    third = manifest(tmp_path / "three")
    assert third["teacher"]["cache_hits"] == 0
    assert third["teacher"]["scored"] == third["counts"]["written"]
    assert len(list(cache.iterdir())) == 2  # one folder per tokenizer


# -- ids, shards, buckets -------------------------------------------------------------------------
def test_sort_keys_are_total_and_never_raise():
    ids = ["7", "007", "07", "10", "9", "²", "x", "a7", "1" * 40, "0"]
    orders = {
        tuple(sorted(perm, key=source_sort_key))
        for perm in itertools.islice(itertools.permutations(ids), 0, 5000, 7)
    }
    assert len(orders) == 1  # the same order whatever the arrival order
    order = next(iter(orders))
    assert order[:6] == ("0", "007", "07", "7", "9", "10")  # by value, then by spelling
    assert order[6] == "1" * 40 and set(order[7:]) == {"²", "x", "a7"}
    rows = [Row("007", "007", "", None, 0, True, ""), Row("7", "7", "", None, 0, True, "")]
    assert sorted(rows, key=row_sort_key) == sorted(rows[::-1], key=row_sort_key)


def test_duplicate_ids_are_dead_lettered(tmp_path):
    src = tmp_path / "rows.tsv"
    src.write_text(
        "uid\ttext\tgold\n"
        "a\ta fine film .\t1\n"
        "b\ta dull film .\t0\n"
        "a\tanother film with the same id .\t0\n"
        "²\tsuperscript two as an id .\t1\n"
        "007\tzero zero seven .\t1\n"
        "7\tseven .\t0\n"
        "b\tand b again .\t1\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    build_set(
        "sst2",
        src,
        out,
        format="tsv",
        text_column="text",
        label_column="gold",
        id_column="uid",
        n_iter=3,
    )
    m = manifest(out)
    c = m["counts"]
    assert c["read"] == 7 and c["dead_lettered"] == 2 and c["originals_written"] == 5
    assert c["duplicate_ids"] == 2 and m["dead_letter_reasons"] == {"duplicate id": 2}
    dead = [
        json.loads(x)
        for x in (out / "dead_letter" / "dead_letter.jsonl").read_text().split("\n")
        if x
    ]
    assert [d["line_number"] for d in dead] == [4, 8]  # the later rows of each id
    assert "already used by line 2" in dead[0]["reason"]
    ds = datasets.load_from_disk(str(out))
    originals = ds.filter(lambda r: r["is_original"])
    assert dict(zip(originals["source_id"], originals["text_a"], strict=True))["a"] == (
        "a fine film ."
    )
    assert sorted(originals["source_id"]) == sorted(["a", "b", "²", "007", "7"])


def test_shard_count_follows_the_data_and_a_worker_holds_one_shard(glue_dir, tmp_path):
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 300)
    out = tmp_path / "out"
    build_set("sst2", src, out, n_iter=8, max_shard_rows=500, max_bucket_rows=600, spill_rows=400)
    m = manifest(out)
    written = m["counts"]["written"]
    shards = sorted(out.glob("data-*.arrow"))
    assert len(shards) == m["num_shards"] == -(-written // 500)  # ceil(rows / 500)
    assert [p.name for p in shards] == [
        f"data-{k:05d}-of-{len(shards):05d}.arrow" for k in range(len(shards))
    ]
    sizes = [pa.ipc.open_stream(pa.memory_map(str(p))).read_all().num_rows for p in shards]
    assert sum(sizes) == written
    # a worker writing a shard held that shard's rows, never the whole set
    assert m["max_rows_held"]["shard"] == max(sizes) < written
    # dedup buckets follow the data too: 300 sources x 9 rows / 600 = 5 buckets
    assert 0 < m["max_rows_held"]["dedup_bucket"] < written / 2
    again = tmp_path / "again"  # another batching of the same data writes the same bytes
    build_set("sst2", src, again, n_iter=8, max_shard_rows=500, batch_size=37, spill_rows=1000000)
    assert shard_bytes(again) == shard_bytes(out)


# -- the portable path (what Flink, Spark and Dataflow run) --------------------------------------
@pytest.fixture
def worker_pool():
    """A Beam worker pool on a free local port (the venv's bin first on PATH)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
         f"--service_port={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        kill_group(proc)
        pytest.fail("the Beam worker pool did not start within 60 s")
    yield port
    kill_group(proc)


def test_portable_runner_with_external_workers_writes_the_same_set(worker_pool, tmp_path):
    src = tmp_path / "rows.tsv"
    good = (FIX / "sst2_train.tsv").read_bytes()
    src.write_bytes(good + b"ragged\t1\t2\n \t0\nodd label\tmaybe\n")
    args = ["--task", "sst2", "--input", str(src), "--n-iter", "6", "--num-shards", "3"]
    build_set("sst2", src, tmp_path / "local", n_iter=6, num_shards=3)
    portable = [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{worker_pool}",
    ]
    proc = start_build([*args, "--out", str(tmp_path / "portable"), *portable], tmp_path / "log")
    try:
        code = proc.wait(timeout=300)  # a worker that cannot start would hang the job
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail("the portable build hung:\n" + (tmp_path / "log").read_text()[-3000:])
    assert code == 0, (tmp_path / "log").read_text()[-3000:]
    local, remote = manifest(tmp_path / "local"), manifest(tmp_path / "portable")
    assert remote["counts"] == local["counts"] and local["counts"]["dead_lettered"] == 3
    assert remote["dead_letter_reasons"] == local["dead_letter_reasons"]
    assert len(shard_bytes(tmp_path / "local")) == 3
    assert shard_bytes(tmp_path / "portable") == shard_bytes(tmp_path / "local")
    dead = "dead_letter/dead_letter.jsonl"
    assert (tmp_path / "portable" / dead).read_bytes() == (tmp_path / "local" / dead).read_bytes()
