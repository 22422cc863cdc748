"""P7: does the build's memory follow its settings, not the data, and its time grow linearly?

    python bench/scale.py [--copies 4] [--n-iter 20] [--limit N]

SST-2 train replicated 1x and ``--copies``x with distinct texts (copy k prefixes every sentence
with its own word), ``transferset build`` with default flags, no teacher, in-process runner. Each
build runs in its own process under ``/usr/bin/time``; peak RSS covers the process and its
children. Last line: ``P7 rss_ratio_4x=<4x/1x> wall_ratio_4x=<4x/1x>`` (goals: <= 1.3, <= 4.4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: see bench/augment.py

from bench._glue import glue_file  # noqa: E402

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def replicate(src: Path, dst: Path, copies: int, limit: int | None) -> int:
    """``copies`` copies of the rows of ``src`` (header once), each copy's texts made distinct."""
    lines = src.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1 : (limit + 1) if limit else None]
    with open(dst, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for k in range(copies):
            for row in rows:
                f.write(f"{WORDS[k % len(WORDS)]}{k // len(WORDS) or ''} {row}\n")
    return copies * len(rows)


def build(src: Path, out: Path, n_iter: int) -> tuple[int, float, dict]:
    """Peak RSS (KB) and wall seconds of one ``transferset build`` process; its manifest."""
    cmd = [
        "/usr/bin/time",
        "-f",
        "%M %e",
        sys.executable,
        "-m",
        "transferset_cli",
        "build",
        "--task",
        "sst2",
        "--input",
        str(src),
        "--out",
        str(out),
        "--n-iter",
        str(n_iter),
        "--overwrite",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stderr[-3000:]}")
    rss, wall = proc.stderr.strip().splitlines()[-1].split()
    return int(rss), float(wall), json.loads((out / "manifest.json").read_text())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None, help="first N rows of SST-2 train")
    args = ap.parse_args(argv)
    src = glue_file("SST-2/train.tsv")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results = {}
    try:
        for copies in (1, args.copies):
            data = tmp / f"x{copies}.tsv"
            sources = replicate(src, data, copies, args.limit)
            rss, wall, m = build(data, tmp / f"out{copies}", args.n_iter)
            results[copies] = (rss, wall)
            c = m["counts"]
            print(
                f"{copies}x: {sources:,} sources -> {c['written']:,} rows in {m['num_shards']} "
                f"shards; peak RSS {rss / 1024:,.0f} MB; wall {wall:.1f} s; largest dedup bucket "
                f"{m['max_rows_held']['dedup_bucket']:,} rows, largest shard "
                f"{m['max_rows_held']['shard']:,} rows",
                flush=True,
            )
            shutil.rmtree(tmp / f"out{copies}")
            data.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (r1, w1), (rn, wn) = results[1], results[args.copies]
    print(f"P7 rss_ratio_{args.copies}x={rn / r1:.3f} wall_ratio_{args.copies}x={wn / w1:.3f}")


if __name__ == "__main__":
    main()
