"""P3/P4: what Beam costs over plain library calls, and what a second worker buys.

    python bench/pipeline.py [--limit N] [--n-iter 20] [--num-shards 4]

On SST-2 train with no teacher, in one run:
  library   the same stages as plain calls in one process (read, tag, vocabulary, augment,
            dedup, write with pyarrow);
  beam_1    `transferset build` on Beam's FnApiRunner in-process;
  beam_2    the same with --direct_running_mode=multi_processing --direct_num_workers=2;
  pool_2    the library calls on a multiprocessing.Pool(2) (tag and augment in the workers).
Last line: ``P3 beam_overhead_ratio=<beam_1/library> P4 two_worker_speedup=<beam_1/beam_2>
pool_speedup=<library/pool_2>``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing as mp
import os
import posixpath
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: see bench/augment.py

from augment import AugmentConfig, PosVocabulary, augment_batch, load_tagger, tag_texts  # noqa: E402
from augment.seeding import stable_hash64  # noqa: E402
from augment.tasks import get_task  # noqa: E402
from bench._glue import glue_file  # noqa: E402
from pipelines import build  # noqa: E402
from pipelines.readers import read_file  # noqa: E402
from pipelines.records import Row, row_sort_key  # noqa: E402
from pipelines.shards import features_for, shard_name, write_table  # noqa: E402
from pipelines.stages import deduplicate, rows_to_table  # noqa: E402

SPEC = get_task("sst2")
BATCH = 1000


def _read(path, limit):
    return [ex for ex in read_file(path, SPEC, "glue", limit=limit)]


def _tag(examples):
    nlp = load_tagger()
    gc.freeze()
    return list(tag_texts(nlp, [ex.text_a for ex in examples], batch_size=BATCH))


def _augment(examples, tagged, vocab, cfg):
    rows = []
    for k in range(0, len(examples), BATCH):
        chunk = list(zip(examples[k : k + BATCH], tagged[k : k + BATCH], strict=True))
        kept = augment_batch([(ex.source_id, a, None) for ex, a in chunk], vocab=vocab, config=cfg)
        for (ex, _), samples in zip(chunk, kept, strict=True):
            rows.append(Row(ex.source_id, ex.source_id, ex.text_a, None, ex.label, True, ""))
            rows += [
                Row(f"{ex.source_id}-{s.index}", ex.source_id, s.text_a, None, -1, False, s.ops)
                for s in samples
            ]
    return rows


def _write(rows, out, num_shards):
    rows, _ = deduplicate(rows)
    parts = [[] for _ in range(num_shards)]
    for r in rows:
        parts[stable_hash64(r.id) % num_shards].append(r)
    features = features_for(SPEC, with_logits=False)
    for k, part in enumerate(parts):
        part.sort(key=row_sort_key)
        write_table(
            rows_to_table(part, features.arrow_schema),
            posixpath.join(out, shard_name(k, num_shards)),
        )
    return len(rows)


def library(path, out, cfg, limit, num_shards):
    examples = _read(path, limit)
    tagged = _tag(examples)
    vocab = PosVocabulary.from_sentences(tagged)
    return _write(_augment(examples, tagged, vocab, cfg), out, num_shards)


_POOL_STATE = {}


def _pool_tag(examples):
    if "nlp" not in _POOL_STATE:
        _POOL_STATE["nlp"] = load_tagger()
        gc.freeze()
    return list(tag_texts(_POOL_STATE["nlp"], [ex.text_a for ex in examples], batch_size=BATCH))


def _pool_augment(job):
    examples, tagged, vocab, cfg = job
    return _augment(examples, tagged, vocab, cfg)


def pool(path, out, cfg, limit, num_shards, workers=2):
    examples = _read(path, limit)
    chunks = [examples[k : k + BATCH] for k in range(0, len(examples), BATCH)]
    with mp.get_context("spawn").Pool(workers) as p:
        tagged_chunks = p.map(_pool_tag, chunks)
        vocab = PosVocabulary()
        for tagged in tagged_chunks:
            vocab.update(tagged)
        jobs = [(c, t, vocab, cfg) for c, t in zip(chunks, tagged_chunks, strict=True)]
        rows = [r for part in p.map(_pool_augment, jobs) for r in part]
    return _write(rows, out, num_shards)


def beam(path, out, cfg, limit, num_shards, extra=()):
    argv = [
        "--task",
        "sst2",
        "--input",
        path,
        "--out",
        out,
        "--n-iter",
        str(cfg.n_iter),
        "--num-shards",
        str(num_shards),
        "--overwrite",
        *extra,
    ]
    if limit:
        argv += ["--limit", str(limit)]
    build.run(argv)


def timed(name, fn, *args, **kwargs):
    t = time.perf_counter()
    fn(*args, **kwargs)
    dt = time.perf_counter() - t
    print(f"{name:<9} {dt:7.1f} s", flush=True)
    return dt


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--num-shards", type=int, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    path = str(glue_file("SST-2/train.tsv"))
    cfg = AugmentConfig(n_iter=args.n_iter)
    tmp = tempfile.mkdtemp(prefix="bench-pipeline-")
    dirs = {k: os.path.join(tmp, k) for k in ("lib", "beam1", "beam2", "pool")}
    for d in dirs.values():
        os.makedirs(d)
    print(
        f"SST-2 train{f' (first {args.limit})' if args.limit else ''}, n_iter={cfg.n_iter}, "
        f"{args.num_shards} shards, {os.cpu_count()} cores"
    )
    try:
        t_lib = timed("library", library, path, dirs["lib"], cfg, args.limit, args.num_shards)
        t_b1 = timed("beam_1", beam, path, dirs["beam1"], cfg, args.limit, args.num_shards)
        t_b2 = timed(
            "beam_2",
            beam,
            path,
            dirs["beam2"],
            cfg,
            args.limit,
            args.num_shards,
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        )
        t_pool = timed("pool_2", pool, path, dirs["pool"], cfg, args.limit, args.num_shards)
        same = all(
            Path(dirs["lib"], n).read_bytes()
            == Path(dirs["beam1"], n).read_bytes()
            == Path(dirs["beam2"], n).read_bytes()
            for n in (shard_name(k, args.num_shards) for k in range(args.num_shards))
        )
        print(f"shards identical across library, beam_1 and beam_2: {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"P3 beam_overhead_ratio={t_b1 / t_lib:.3f} P4 two_worker_speedup={t_b1 / t_b2:.3f} "
        f"pool_speedup={t_lib / t_pool:.3f}"
    )


if __name__ == "__main__":
    main()
