"""Faults, tried as a hostile user would: each case of the README's *Faults* table, with real
processes (kill -9 of a process group, two builds at once), real files (corrupted, truncated,
empty and garbage cache parts, gzip, 5 MB rows, multi-line CSV), real mounts (a read-only bind
mount, a full tmpfs; skipped where mounting is refused) and the real SST-2 teacher where one is
needed. Every failure must be one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import FIX, build_set, head, make_tiny_teacher
from test_scale_resume import SHARED_TEACHER, kill_group, manifest, shard_bytes, start_build

from pipelines import cache_compaction, logits_cache
from pipelines.cache_compaction import compact
from pipelines.logits_cache import LogitsCache, cache_key, write_part
from transferset_cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
SST2 = FIX / "sst2_train.tsv"


def fails(capsys, argv: list[str] | str, match: str) -> str:
    """``transferset ARGV`` (a list, or a string split at spaces) exits 2 with one line on
    stderr that contains ``match``."""
    capsys.readouterr()  # what earlier steps of the test printed
    assert cli_main(argv.split() if isinstance(argv, str) else argv) == 2
    text = capsys.readouterr().err
    # progress bars of libraries loaded by earlier tests may share stderr; the CLI turns them off
    err = "\n".join(ln for ln in text.replace("\r", "\n").splitlines() if ln and "/s]" not in ln)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert match in err, err
    return err


def tsv(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return path


@contextlib.contextmanager
def mounted(kind: str, folder: Path):
    """A read-only bind mount of ``folder`` onto itself, or a 256 KiB tmpfs at ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cmds = (
        [
            ["mount", "--bind", str(folder), str(folder)],
            ["mount", "-o", "remount,ro,bind", str(folder)],
        ]
        if kind == "ro"
        else [["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)]]
    )
    done = 0
    try:
        for cmd in cmds:
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                pytest.skip(f"mounting is not allowed here ({' '.join(cmd)})")
            done += 1
        yield folder
    finally:
        if done:
            subprocess.run(["umount", str(folder)], capture_output=True)


# -- teachers that would give nonsense ------------------------------------------------------------
def _tokenizerless(teacher: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(teacher / name, dst / name)
    return dst


def test_a_teacher_without_tokenizer_files_is_refused_by_every_command(
    capsys, tiny_teacher, tmp_path, glue_dir
):
    bare = _tokenizerless(Path(tiny_teacher), tmp_path / "bare")
    out, dev = tmp_path / "set", glue_dir / "SST-2" / "dev.tsv"
    build = f"build --task sst2 --input {SST2} --out {out} --teacher"
    finetune = f"finetune-teacher --task sst2 --train {SST2} --dev {SST2} --out {tmp_path}/ft"
    good = tmp_path / "good"
    build_set("sst2", SST2, good, n_iter=1)
    train = f"train-student --shards {good} --task sst2 --eval {SST2} --out {tmp_path}/st"
    for argv in (
        f"{build} {bare}",
        f"evaluate --model {bare} --task sst2 --data {dev}",
        f"{finetune} --base {bare}",
        f"{train} --student transformer --teacher {bare} --loss ce",
        f"export {bare} --out {tmp_path}/ex",
    ):
        fails(capsys, argv, "has no tokenizer files")
    assert not out.exists()
    # a tokenizer file whose vocabulary lost its words: every word [UNK]
    from transformers import BertTokenizerFast

    empty = _tokenizerless(Path(tiny_teacher), tmp_path / "empty")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(empty)
    fails(capsys, f"{build} {empty}", "unknown tokens of")
    fails(capsys, f"{finetune} --base {tmp_path}/nope", "no such folder")


def test_evaluate_reorders_a_relabelled_teacher_and_refuses_other_tasks(capsys, glue_dir, tmp_path):
    if not SHARED_TEACHER.exists():
        pytest.skip(f"{SHARED_TEACHER} is absent: the reference teacher lives in ../shared/models")
    from safetensors.torch import load_file, save_file

    flipped = tmp_path / "flipped"  # the same teacher, its head stored [positive, negative]
    shutil.copytree(SHARED_TEACHER, flipped)
    weights = load_file(flipped / "model.safetensors")
    for name in ("classifier.weight", "classifier.bias"):
        weights[name] = weights[name].flip(0).contiguous()
    save_file(weights, flipped / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((flipped / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}
    config["label2id"] = {"positive": 0, "negative": 1}
    (flipped / "config.json").write_text(json.dumps(config))
    dev = head(glue_dir / "SST-2" / "dev.tsv", tmp_path / "dev.tsv", 150)
    scores = []
    for model in (SHARED_TEACHER, flipped):
        out = tmp_path / f"{model.name}.json"
        argv = ["evaluate", "--model", str(model), "--task", "sst2", "--data", str(dev)]
        assert cli_main([*argv, "--out", str(out)]) == 0
        scores.append(json.loads(out.read_text()))
    assert scores[1]["logit_order"] == [1, 0] and scores[0]["logit_order"] == [0, 1]
    assert scores[1]["metrics"] == scores[0]["metrics"] and scores[0]["metrics"]["accuracy"] > 0.85
    mrpc = glue_dir / "MRPC" / "test.tsv"
    fails(
        capsys,
        ["evaluate", "--model", str(SHARED_TEACHER), "--task", "mrpc", "--data", str(mrpc)],
        "do not match the task's labels",
    )
    stsb = glue_dir / "STS-B" / "dev.tsv"
    fails(
        capsys,
        ["evaluate", "--model", str(SHARED_TEACHER), "--task", "stsb", "--data", str(stsb)],
        "a regression task needs a model",
    )
    regression = make_tiny_teacher(tmp_path / "reg", labels=None)
    fails(
        capsys,
        ["evaluate", "--model", str(regression), "--task", "sst2", "--data", str(dev)],
        "a regression model",
    )


# -- the logits cache ----------------------------------------------------------------------------
def _fields():
    return {
        "weights_sha256": "w",
        "tokenizer_sha256": "t",
        "config_sha256": "c",
        "max_length": 128,
        "dtype": "float32",
        "device": "cpu",
    }


def test_truncated_empty_garbage_and_flipped_parts_are_moved_aside_and_the_rest_served(tmp_path):
    fields, folder = _fields(), tmp_path / "c"
    folder.mkdir()
    rng = np.random.default_rng(0)
    keys = [cache_key(f"text {i}", None) for i in range(500)]
    logits = rng.standard_normal((500, 2)).astype(np.float32)
    paths = [
        Path(write_part(str(folder), keys[k : k + 100], logits[k : k + 100], fields))
        for k in range(0, 500, 100)
    ]
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])  # truncated
    paths[1].write_bytes(b"")  # empty
    paths[2].write_bytes(rng.bytes(len(data)))  # garbage
    # one logit's bytes changed in place: the file still parses, only the checksum knows
    raw = bytearray(paths[3].read_bytes())
    at = bytes(raw).find(logits[350, 1].tobytes())
    assert at > 0
    raw[at : at + 4] = np.float32(123.0).tobytes()
    paths[3].write_bytes(bytes(raw))
    (folder / ".tmp-part-killed.arrow").write_bytes(b"half a part")
    cache = LogitsCache(str(folder), fields)
    assert sorted(cache.bad) == sorted(str(p) for p in paths[:4])
    assert len(list((folder / "corrupt").iterdir())) == 4 and not any(p.exists() for p in paths[:4])
    found, got = cache.lookup(keys, 2)
    assert found.tolist() == [False] * 400 + [True] * 100
    np.testing.assert_array_equal(got[400:], logits[400:])
    # killed writers' temporary files are swept once they are old; a live one is left alone
    assert cache_compaction.sweep_temporary(str(folder)) == []
    assert len(cache_compaction.sweep_temporary(str(folder), older_than_s=0)) == 1


def test_a_corrupted_part_is_rescored_in_a_real_build_with_a_warning(tiny_teacher, tmp_path):
    cache = tmp_path / "cache"
    flags = ["--n-iter", "4", "--teacher", str(tiny_teacher), "--teacher-cache", str(cache)]
    flags += ["--teacher-chunk-rows", "8"]
    build_set("sst2", SST2, tmp_path / "one", n_iter=4, teacher=str(tiny_teacher),
              teacher_cache=str(cache), teacher_chunk_rows=8)  # fmt: skip
    parts = sorted(cache.glob("*/part-*.arrow"))
    assert len(parts) >= 2
    first = datasets.load_from_disk(str(tmp_path / "one"))
    # overwrite the bytes of one stored logit: Arrow still reads the file
    logit = np.float32(first["teacher_logits"][0][0]).tobytes()
    victim = next(p for p in parts if logit in p.read_bytes())
    raw = victim.read_bytes()
    victim.write_bytes(raw.replace(logit, np.float32(-99.0).tobytes(), 1))
    proc = start_build(
        ["--task", "sst2", "--input", str(SST2), "--out", str(tmp_path / "two"), *flags],
        tmp_path / "log",
    )
    assert proc.wait(timeout=300) == 0, (tmp_path / "log").read_text()[-2000:]
    log = (tmp_path / "log").read_text()
    assert f"logits cache part {victim} is bad (record batch 0 fails its checksum)" in log
    t = manifest(tmp_path / "two")["teacher"]
    assert t["cache_parts_bad"] == 1 and t["scored"] > 0
    assert t["scored"] + t["cache_hits"] == manifest(tmp_path / "two")["counts"]["written"]
    second = datasets.load_from_disk(str(tmp_path / "two"))
    np.testing.assert_allclose(
        np.array(second["teacher_logits"]), np.array(first["teacher_logits"]), atol=1e-5
    )
    assert t["ran"] == {"float32/cpu": len(second)}
    assert all("teacher-" in f for f in t["cache_folders"])


def test_a_read_only_or_full_cache_is_warned_about_and_the_build_succeeds(tiny_teacher, tmp_path):
    flags = f"--task sst2 --input {SST2} --n-iter 3 --teacher {tiny_teacher} --teacher-chunk-rows 4"

    def build(out: str, cache: Path) -> str:
        log = tmp_path / f"{out}.log"
        proc = start_build([*flags.split(), "--out", str(tmp_path / out), "--teacher-cache",
                            str(cache)], log)  # fmt: skip
        assert proc.wait(timeout=300) == 0, log.read_text()[-2000:]
        return log.read_text()

    with mounted("ro", tmp_path / "ro") as ro:
        assert "can't be written" in build("a", ro)
    t = manifest(tmp_path / "a")["teacher"]
    assert t["scored"] == manifest(tmp_path / "a")["counts"]["written"] and t["cache_unsaved"] > 0
    with mounted("tmpfs", tmp_path / "full") as full:
        with contextlib.suppress(OSError):  # leave a few KiB: parts start, then fail
            (full / "filler").write_bytes(b"\0" * (255 << 10))
        assert "can't be written" in build("b", full)
        assert not list(full.glob("*/.tmp-*"))  # a failed write leaves nothing behind
    assert manifest(tmp_path / "b")["teacher"]["cache_unsaved"] > 0
    a = datasets.load_from_disk(str(tmp_path / "a"))
    b = datasets.load_from_disk(str(tmp_path / "b"))
    np.testing.assert_array_equal(np.array(a["teacher_logits"]), np.array(b["teacher_logits"]))


def test_a_full_disk_under_out_is_one_line(capsys, tmp_path):
    out = tmp_path / "small"
    with mounted("tmpfs", out):
        big = tsv(tmp_path / "big.tsv", [(f"row {i} " + "word " * 40, i % 2) for i in range(3000)])
        fails(
            capsys,
            [
                "build",
                "--task",
                "sst2",
                "--input",
                str(big),
                "--out",
                str(out / "set"),
                "--n-iter",
                "2",
            ],
            "No space left on device",
        )
        assert not list(out.glob("set/data-*.arrow"))


def test_compaction_concurrent_with_a_reader_loses_nothing(tmp_path):
    fields, folder = _fields(), tmp_path / "c"
    folder.mkdir()
    keys = [cache_key(f"t{i}", None) for i in range(320)]
    logits = np.arange(640, dtype=np.float32).reshape(320, 2)
    for k in range(0, 320, 20):
        write_part(str(folder), keys[k : k + 20], logits[k : k + 20], fields)
    listed = logits_cache.parts(str(folder))  # a reader lists the folder ...
    code = (
        f"from pipelines.cache_compaction import compact; import sys; "
        f"sys.exit(0 if compact({str(folder)!r}, {fields!r}) == 16 else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    assert not any(os.path.exists(p) for p in listed)  # ... and compaction removed all of it
    found, got = LogitsCache(str(folder), fields).lookup(keys, 2)
    assert found.all()
    np.testing.assert_array_equal(got, logits)
    assert compact(str(folder), fields, min_parts=1) == 1  # idempotent; still one part


# -- inputs ---------------------------------------------------------------------------------------
def test_rfc4180_csv_records_with_line_breaks_stay_whole(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text(
        'sentence,label\n"a fine\nfilm, really",1\nplain one,0\n"said ""no""\nthen left",0\n'
    )
    build_set("sst2", src, tmp_path / "set", n_iter=1, text_column="sentence", label_column="label")
    ds = datasets.load_from_disk(str(tmp_path / "set")).filter(lambda r: r["is_original"])
    assert sorted(ds["text_a"]) == ["a fine\nfilm, really", "plain one", 'said "no"\nthen left']
    assert sorted(ds["label"]) == [0, 0, 1]
    # a quote left open at the end swallows no rows silently: one dead letter that says so
    bad = tmp_path / "open.csv"
    bad.write_text('sentence,label\ngood film,1\n"never closed,0\nnice movie,1\nok movie,0\n')
    build_set(
        "sst2", bad, tmp_path / "open", n_iter=1, text_column="sentence", label_column="label"
    )
    m = manifest(tmp_path / "open")
    assert m["counts"]["originals_written"] == 1 and m["counts"]["dead_lettered"] == 1
    letter = (tmp_path / "open" / "dead_letter" / "dead_letter.jsonl").read_text()
    assert "the quote opened on line 3 is never closed (3 lines to the end of the file)" in letter


def test_huge_rows_are_dead_lettered_in_tsv_jsonl_and_text(tmp_path):
    huge = "word " * 1_000_000  # 5 MB
    cases = {
        "a.tsv": "sentence\tlabel\nfine film\t1\n" + huge + "\t0\nbad film\t0\n",
        "a.jsonl": json.dumps({"sentence": "fine film", "label": 1})
        + "\n"
        + json.dumps({"sentence": huge, "label": 0})
        + "\n"
        + json.dumps({"sentence": "bad film", "label": 0})
        + "\n",
        "a.txt": "fine film\n" + huge + "\nbad film\n",
    }
    for name, body in cases.items():
        src = tmp_path / name
        src.write_text(body)
        cols = {"text_column": "sentence", "label_column": "label"} if "json" in name else {}
        build_set("sst2", src, tmp_path / f"set-{name}", n_iter=1, **cols)
        m = manifest(tmp_path / f"set-{name}")
        assert m["counts"]["read"] == 3 and m["counts"]["originals_written"] == 2
        assert m["dead_letter_reasons"] == {"too long": 1}
        letters = (tmp_path / f"set-{name}" / "dead_letter" / "dead_letter.jsonl").read_text()
        assert "5,000,000 characters, max_chars=20,000" in letters


def test_compressed_inputs_read_like_plain_ones_and_bad_files_are_one_line(capsys, tmp_path):
    plain = tmp_path / "plain.tsv"
    shutil.copy(SST2, plain)
    build_set("sst2", plain, tmp_path / "plain", n_iter=2)
    gz = tmp_path / "plain.tsv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    build_set("sst2", gz, tmp_path / "gz", n_iter=2, format="glue")
    assert shard_bytes(tmp_path / "gz") == shard_bytes(tmp_path / "plain")
    rows = [{"sentence": "fine film", "label": 1}, {"sentence": "bad film", "label": 0}]
    jl = tmp_path / "a.jsonl.gz"
    jl.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    cv = tmp_path / "a.csv.gz"
    cv.write_bytes(gzip.compress(b"sentence,label\nfine film,1\nbad film,0\n"))
    for src, fmt in ((jl, "jsonl"), (cv, "csv")):
        out = tmp_path / f"set-{fmt}"
        build_set(
            "sst2", src, out, n_iter=1, format=fmt, text_column="sentence", label_column="label"
        )
        ds = datasets.load_from_disk(str(out)).filter(lambda r: r["is_original"])
        assert sorted(ds["text_a"]) == ["bad film", "fine film"]
    base = ["build", "--task", "sst2", "--out", str(tmp_path / "x"), "--input"]
    (tmp_path / "bin.tsv").write_bytes(b"sentence\tlabel\n\x00\x01\x02\xff\t1\n")
    fails(capsys, [*base, str(tmp_path / "bin.tsv")], "is not a text file")
    (tmp_path / "zero.tsv").write_bytes(b"")
    fails(capsys, [*base, str(tmp_path / "zero.tsv")], "is empty (0 bytes)")
    fails(capsys, [*base, str(tmp_path)], "is a folder")
    (tmp_path / "cr.tsv").write_bytes(b"sentence\tlabel\rfine film\t1\rbad film\t0\r")
    fails(capsys, [*base, str(tmp_path / "cr.tsv")], "CR only")
    fails(
        capsys,
        ["build", "--task", "mrpc", "--out", str(tmp_path / "x"), "--input", str(SST2)],
        "not in the header",
    )
    number = tmp_path / "n.jsonl"
    number.write_text('{"sentence": 3, "label": 1}\n{"sentence": "ok film", "label": 1}\n')
    build_set(
        "sst2", number, tmp_path / "num", text_column="sentence", label_column="label", n_iter=1
    )
    letters = (tmp_path / "num" / "dead_letter" / "dead_letter.jsonl").read_text()
    assert "not text: text_a (column 'sentence') is a int, 3" in letters
    assert not (tmp_path / "x").exists()


# -- arguments ------------------------------------------------------------------------------------
def test_mistyped_flags_and_numbers_out_of_range_are_one_line_in_every_command(capsys, tmp_path):
    build = ["build", "--task", "sst2", "--input", str(SST2), "--out", str(tmp_path / "o")]
    fails(capsys, [*build, "--n-iters", "3"], "did you mean --n-iter?")
    for flag, value in (
        ("--teacher-max-length", "0"),
        ("--teacher-max-tokens", "0"),
        ("--teacher-max-batch", "0"),
        ("--teacher-threads", "0"),
        ("--batch-size", "0"),
        ("--limit", "0"),
        ("--limit", "-5"),
        ("--max-chars", "0"),
        ("--num-shards", "0"),
    ):
        extra = ["--teacher", str(SHARED_TEACHER)] if flag.startswith("--teacher") else []
        if extra and not SHARED_TEACHER.exists():
            continue
        fails(capsys, [*build, flag, value, *extra], flag)
    fails(capsys, [*build, "--spacy-model", "no_such_model"], "'no_such_model' can't be used")
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        cuda = True
    if not cuda and SHARED_TEACHER.exists():
        fails(
            capsys,
            [*build, "--teacher", str(SHARED_TEACHER), "--teacher-device", "cuda"],
            "no CUDA device",
        )
    good = tmp_path / "set"
    build_set("sst2", SST2, good, n_iter=1)
    train = [
        "train-student",
        "--shards",
        str(good),
        "--task",
        "sst2",
        "--eval",
        str(SST2),
        "--out",
        str(tmp_path / "st"),
        "--loss",
        "ce",
    ]
    for flag, value in (
        ("--temperature", "0"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--hidden", "0"),
        ("--dropout", "1.5"),
    ):
        fails(capsys, [*train, flag, value], flag)
    fails(capsys, [*train, "--epocs", "3"], "unrecognized arguments")
    ft = [
        "finetune-teacher",
        "--task",
        "sst2",
        "--train",
        str(SST2),
        "--dev",
        str(SST2),
        "--out",
        str(tmp_path / "ft"),
    ]
    for flag, value in (("--epochs", "0"), ("--lr", "0"), ("--batch-size", "0")):
        fails(capsys, [*ft, flag, value], flag)
    ev = ["evaluate", "--model", str(tmp_path), "--task", "sst2", "--data", str(SST2)]
    fails(capsys, [*ev, "--threads", "0"], "--threads")
    fails(capsys, [*ev, "--batch-size", "0"], "--batch-size")
    assert not (tmp_path / "st").exists() and not (tmp_path / "ft").exists()


# -- lost work ------------------------------------------------------------------------------------
def test_an_empty_overwrite_leaves_the_good_set_alone(capsys, tmp_path):
    out = tmp_path / "set"
    build_set("sst2", SST2, out, n_iter=2)
    before = shard_bytes(out), (out / "manifest.json").read_text()
    header = tsv(tmp_path / "header.tsv", [])
    unknown = tsv(tmp_path / "unknown.tsv", [("fine film", 7), ("bad film", 9)])
    for src in (header, unknown):
        fails(
            capsys,
            ["build", "--task", "sst2", "--input", str(src), "--out", str(out), "--overwrite"],
            "no rows to write",
        )
        assert (shard_bytes(out), (out / "manifest.json").read_text()) == before


def test_two_builds_on_one_out_never_lose_the_first_set(tmp_path):
    src = head(FIX / "sst2_train.tsv", tmp_path / "src.tsv", 5)
    out = tmp_path / "set"
    procs = [
        start_build(
            [
                "--task",
                "sst2",
                "--input",
                str(src),
                "--out",
                str(out),
                "--n-iter",
                str(n),
                "--seed",
                str(n),
            ],
            tmp_path / f"log{n}",
        )
        for n in (3, 4)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    assert sorted(codes) == [0, 2], codes
    loser = (tmp_path / f"log{3 if codes[0] == 2 else 4}").read_text()
    assert "Traceback" not in loser
    assert "was written by another build" in loser or "already holds a transfer set" in loser
    winner = 3 if codes[0] == 0 else 4
    assert manifest(out)["augment"]["n_iter"] == winner
    assert len(datasets.load_from_disk(str(out))) > 0


def _train_argv(shards: Path, out: Path) -> list[str]:
    return [
        "train-student",
        "--shards",
        str(shards),
        "--task",
        "sst2",
        "--eval",
        str(shards),
        "--out",
        str(out),
        "--embeddings",
        "random",
        "--embed-dim",
        "32",
        "--hidden",
        "32",
        "--glove-words",
        "0",
        "--epochs",
        "4",
        "--patience",
        "9",
        "--batch-size",
        "8",
        "--dropout",
        "0.2",
    ]


def _train(argv: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "transferset_cli", *argv],
        stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )


def test_a_killed_train_student_resumes_and_ends_with_the_same_weights(glue_dir, tmp_path):
    teacher = make_tiny_teacher(tmp_path / "teacher")
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "src.tsv", 400)
    shards = tmp_path / "set"
    build_set("sst2", src, shards, n_iter=6, teacher=str(teacher))
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    proc = _train(_train_argv(shards, whole), tmp_path / "w.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "w.log").read_text()[-2000:]
    assert not (whole / ".checkpoint").exists()  # a finished run keeps no checkpoint
    proc = _train(_train_argv(shards, resumed), tmp_path / "r1.log")
    state = resumed / ".checkpoint" / "state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.02)
    assert proc.poll() is None, (tmp_path / "r1.log").read_text()[-2000:]  # still training
    kill_group(proc)
    assert state.exists() and not (resumed / "metrics.json").exists()
    proc = _train(_train_argv(shards, resumed), tmp_path / "r2.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "r2.log").read_text()[-2000:]
    assert "resuming after epoch" in (tmp_path / "r2.log").read_text()
    weights = [(d / "model.safetensors").read_bytes() for d in (whole, resumed)]
    assert weights[0] == weights[1]
    one = json.loads((whole / "metrics.json").read_text())
    two = json.loads((resumed / "metrics.json").read_text())
    assert [h["train_loss"] for h in one["history"]] == [h["train_loss"] for h in two["history"]]


def _finetune_argv(glue_dir: Path, base: Path, out: Path, tmp_path: Path) -> list[str]:
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "ft-train.tsv", 300)
    dev = head(glue_dir / "SST-2" / "dev.tsv", tmp_path / "ft-dev.tsv", 100)
    return ["finetune-teacher", "--task", "sst2", "--train", str(src), "--dev", str(dev),
            "--base", str(base), "--out", str(out), "--epochs", "4", "--batch-size", "8",
            "--lr", "1e-3"]  # fmt: skip


def _holds_its_epoch(out: Path, dev: Path) -> int:
    """``out`` is one whole checkpoint: its weights score the dev accuracy its finetune.json
    records for the epoch it says it holds. Returns that epoch."""
    from augment.tasks import get_task
    from distill import Student
    from pipelines.readers import read_examples

    record = json.loads((out / "finetune.json").read_text())
    epoch = record["best_epoch"]
    rows = read_examples(str(dev), get_task("sst2"))
    labels = Student.load(str(out)).predict(list(rows["text_a"])).labels
    gold = [["negative", "positive"][y] for y in rows["label"]]
    accuracy = float(np.mean(np.array(labels) == np.array(gold)))
    assert accuracy == record["history"][epoch - 1]["dev"]["accuracy"]
    return epoch


def test_a_killed_finetune_teacher_resumes_and_its_out_is_always_whole(glue_dir, tmp_path):
    """The best epoch is swapped into --out whole, with the finetune.json that names it; after
    kill -9 the same command resumes after the last finished epoch and ends with the weights an
    uninterrupted run ends with."""
    base = make_tiny_teacher(tmp_path / "base")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    proc = _train(_finetune_argv(glue_dir, base, whole, tmp_path), tmp_path / "w.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "w.log").read_text()[-2000:]
    assert not (tmp_path / "whole.checkpoint").exists()  # a finished run keeps no state
    assert len(json.loads((whole / "finetune.json").read_text())["history"]) == 4
    proc = _train(_finetune_argv(glue_dir, base, resumed, tmp_path), tmp_path / "r1.log")
    state = tmp_path / "resumed.checkpoint" / "state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.02)
    assert proc.poll() is None, (tmp_path / "r1.log").read_text()[-2000:]  # still training
    kill_group(proc)
    # the state is written before the swap: --out is absent (the kill fell between) or epoch 1
    assert not resumed.exists() or _holds_its_epoch(resumed, tmp_path / "ft-dev.tsv") == 1
    # the kill between them, for certain: the same state beside an --out never swapped in
    behind = tmp_path / "behind"
    shutil.copytree(tmp_path / "resumed.checkpoint", tmp_path / "behind.checkpoint")
    for out, log in ((resumed, "r2.log"), (behind, "b2.log")):
        proc = _train(_finetune_argv(glue_dir, base, out, tmp_path), tmp_path / log)
        assert proc.wait(timeout=600) == 0, (tmp_path / log).read_text()[-2000:]
        assert "resuming after epoch 1" in (tmp_path / log).read_text()
        weights = [(d / "model.safetensors").read_bytes() for d in (whole, out)]
        assert weights[0] == weights[1]
        one, two = (json.loads((d / "finetune.json").read_text()) for d in (whole, out))
        assert [h["train_loss"] for h in one["history"]] == [
            h["train_loss"] for h in two["history"]
        ]
        assert one["best_epoch"] == _holds_its_epoch(out, tmp_path / "ft-dev.tsv")
        assert not list(tmp_path.glob(f"{out.name}.saving-*"))
        assert not (tmp_path / f"{out.name}.checkpoint").exists()


def test_replace_folder_swaps_whole_folders_with_or_without_renameat2(tmp_path, monkeypatch):
    from distill import checkpoints

    def folder(name: str, text: str) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(text)
        return tmp_path / name

    out = tmp_path / "out"
    assert checkpoints.replace_folder(str(folder("a", "1")), str(out)) is None
    assert (out / "f").read_text() == "1"
    old = checkpoints.replace_folder(str(folder("b", "2")), str(out))
    assert (out / "f").read_text() == "2" and (Path(old) / "f").read_text() == "1"
    monkeypatch.setattr(checkpoints, "_exchange", lambda a, b: False)  # e.g. a network disk
    old = checkpoints.replace_folder(str(folder("c", "3")), str(out))
    assert (out / "f").read_text() == "3" and (Path(old) / "f").read_text() == "2"
    assert not (tmp_path / "c").exists()
    rename = os.rename

    def second_fails(a, b):
        if Path(a).name == "d":
            raise OSError(28, "No space left on device")
        rename(a, b)

    monkeypatch.setattr(checkpoints.os, "rename", second_fails)
    with pytest.raises(OSError):
        checkpoints.replace_folder(str(folder("d", "4")), str(out))
    assert (out / "f").read_text() == "3"  # the old folder is put back


def test_replace_folder_puts_every_new_file_on_disk_before_the_swap(tmp_path, monkeypatch):
    """A power cut must not leave a committed set or teacher whose files are named but empty:
    every file and folder of the new folder is fsynced before the rename, the parent after."""
    from distill import checkpoints

    staged = tmp_path / "new"
    (staged / "sub").mkdir(parents=True)
    for name in ("a", "sub/b"):
        (staged / name).write_text(name)
    events = []
    monkeypatch.setattr(
        checkpoints.os, "fsync", lambda fd: events.append(os.readlink(f"/proc/self/fd/{fd}"))
    )
    monkeypatch.setattr(checkpoints.os, "rename", lambda a, b: events.append("rename"))
    checkpoints.replace_folder(str(staged), str(tmp_path / "out"))
    assert events[-2:] == ["rename", str(tmp_path)]
    synced = set(events[:-2])
    assert synced == {str(staged / p) for p in ("a", "sub/b", "sub")} | {str(staged)}


def test_a_swap_cut_between_its_renames_gets_its_old_folder_back(tmp_path):
    """Without RENAME_EXCHANGE a swap is two renames; a kill between them leaves --out missing
    and the old folder at <staged>.old. The next run puts it back instead of removing it."""
    from distill.checkpoints import recover_swap
    from pipelines.outdir import clean_stale

    def cut(out: Path, staged: str) -> None:  # the folders that kill leaves
        (tmp_path / f"{staged}.old").mkdir()
        (tmp_path / f"{staged}.old" / "f").write_text("old")
        (tmp_path / staged).mkdir()
        (tmp_path / staged / "f").write_text("new")

    teacher = tmp_path / "teacher"
    cut(teacher, "teacher.saving-ab12")
    assert recover_swap(str(teacher), ".saving-*") == f"{teacher}.saving-ab12.old"
    assert (teacher / "f").read_text() == "old"
    assert recover_swap(str(teacher), ".saving-*") is None  # --out is there: nothing to do
    sset = tmp_path / "set"
    cut(sset, "set.staging-cd34")
    (tmp_path / "set.staging-cd34.lock").write_text("")  # its build's lock, free: the build died
    assert clean_stale(str(sset)) == [f"{sset}.staging-cd34"]
    assert (sset / "f").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("set")) == ["set"]
    # the old folder after a finished swap goes through discard: renamed first, so a kill
    # during its removal leaves a .trash folder that nothing puts back at --out
    from distill.checkpoints import discard

    old = tmp_path / "model.saving-ef56.old"
    old.mkdir()
    (old / "f").write_text("half removed")
    os.rename(old, f"{old}.trash")  # what a kill inside discard's rmtree leaves
    assert recover_swap(str(tmp_path / "model"), ".saving-*") is None
    assert not (tmp_path / "model").exists()
    done = tmp_path / "model.saving-gh78.old"
    done.mkdir()
    (done / "f").write_text("old")
    discard(str(done))
    discard(None)  # no old folder: nothing to do
    assert not done.exists() and not (tmp_path / f"{done.name}.trash").exists()


def test_clean_stale_keeps_what_a_live_build_holds(tmp_path):
    """A staging folder or lone lock whose flock another open file holds is a live build's:
    kept. Free ones (and a folder with no lock file) are removed, their lock files too."""
    from distill.checkpoints import hold_lock
    from pipelines.outdir import clean_stale

    out = str(tmp_path / "set")
    for name in ("live", "dead", "nolock"):
        Path(f"{out}.staging-{name}").mkdir()
    for name in ("live", "dead", "orphan-live", "orphan-dead"):
        Path(f"{out}.staging-{name}.lock").write_text("")
    fds = [hold_lock(f"{out}.staging-{n}.lock", n) for n in ("live", "orphan-live")]
    try:
        assert sorted(clean_stale(out)) == [f"{out}.staging-dead", f"{out}.staging-nolock"]
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == ["set.staging-live", "set.staging-live.lock", "set.staging-orphan-live.lock"]
    finally:
        for fd in fds:
            os.close(fd)


def test_the_run_fingerprint_tells_slices_of_one_table_apart():
    """A slice shares its parent's buffers: the hash must see its offset and length."""
    import hashlib

    from distill.checkpoints import hash_table

    ds = datasets.Dataset.from_dict({"text_a": [f"s{i}" for i in range(8)], "label": [0, 1] * 4})

    def digest(d) -> str:
        h = hashlib.sha256()
        hash_table(h, d.with_format("arrow")[:])
        return h.hexdigest()

    parts = [ds.select(range(0, 2)), ds.select(range(2, 4)), ds.select(range(0, 4)), ds]
    assert len({digest(d) for d in parts}) == 4
    assert digest(ds.select(range(2, 4))) == digest(ds.select(range(2, 4)))


def test_a_checkpoint_of_other_data_or_config_is_not_resumed():
    """The run fingerprint covers every byte training reads: other logits (a relabelled
    teacher), labels, rows, selection data or config start a new run."""
    from dataclasses import replace

    import pyarrow as pa

    from distill.train import TrainConfig, _run_fingerprint

    def table(logits):
        ids = pa.array([[1, 2], [3]], type=pa.list_(pa.int32()))
        soft = pa.array(logits, type=pa.list_(pa.float32()))
        return pa.table({"ids_a": ids, "label": pa.array([1, 0]), "teacher_logits": soft})

    dev = datasets.Dataset.from_dict(
        {"text_a": ["a", "b"], "text_b": [None, None], "label": [0, 1]}
    )
    cfg = TrainConfig(task="sst2").resolved()
    rows = np.arange(2)
    base = _run_fingerprint(cfg, table([[0.0, 1.0], [1.0, 0.0]]), rows, dev)
    assert base == _run_fingerprint(cfg, table([[0.0, 1.0], [1.0, 0.0]]), rows, dev)
    others = [
        _run_fingerprint(cfg, table([[1.0, 0.0], [0.0, 1.0]]), rows, dev),
        _run_fingerprint(cfg, table([[0.0, 1.0], [1.0, 0.0]]), rows[:1], dev),
        _run_fingerprint(replace(cfg, seed=1), table([[0.0, 1.0], [1.0, 0.0]]), rows, dev),
        _run_fingerprint(cfg, table([[0.0, 1.0], [1.0, 0.0]]), rows, dev.select([1, 0])),
    ]
    assert base not in others and len(set(others)) == 4
