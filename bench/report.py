"""Does ``transferset report`` run in bounded memory, in minutes, on a million-row set?

    python bench/report.py [--n-iter 12] [--keep]

Two transfer sets from SST-2 train (copies with distinct texts, ``bench/scale.py``'s way), with
logits from a tiny random teacher (``bench/student.py``; what they say does not change the
report's cost): a quarter set (one copy of half the sentences) and a full one (two copies of
all, ~1M rows at ``--n-iter 12``). Each report runs in its own process under
``/usr/bin/time``. Last line: ``REPORT rows=<full> wall_s=<full> rss_mb=<full>
rss_ratio_4x=<full / quarter> wall_ratio_4x=<full / quarter>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: see bench/augment.py

from bench._glue import glue_file  # noqa: E402
from bench.scale import replicate  # noqa: E402
from bench.student import WORK, build_with_tiny_teacher  # noqa: E402


def timed_report(kd_set: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one ``transferset report`` process."""
    cmd = ["/usr/bin/time", "-f", "%M %e", sys.executable, "-m", "transferset_cli"]
    cmd += ["report", str(kd_set), "--out", str(kd_set.parent / (kd_set.name + "-report"))]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"report failed:\n{proc.stderr[-3000:]}")
    rss, wall = proc.stderr.strip().splitlines()[-1].split()
    return int(rss) / 1024, float(wall)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-iter", type=int, default=12)
    ap.add_argument("--keep", action="store_true", help="keep the sets in data/bench-student")
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    src = glue_file("SST-2/train.tsv")
    half = (sum(1 for _ in open(src, encoding="utf-8")) - 1) // 2
    results = {}
    for name, copies, limit in (("quarter", 1, half), ("full", 2, None)):
        data, kd_set = WORK / f"report-{name}.tsv", WORK / f"report-set-{name}"
        replicate(src, data, copies, limit)
        build_with_tiny_teacher(data, kd_set, args.n_iter)
        rows = json.loads((kd_set / "manifest.json").read_text())["counts"]["written"]
        rss, wall = timed_report(kd_set)
        results[name] = (rows, rss, wall)
        print(
            f"{name}: {rows:,} rows: report peak RSS {rss:,.0f} MB, wall {wall:.1f} s", flush=True
        )
        data.unlink()
        if not args.keep:
            shutil.rmtree(kd_set)
            shutil.rmtree(kd_set.parent / (kd_set.name + "-report"), ignore_errors=True)
    (_, mq, wq), (rf, mf, wf) = results["quarter"], results["full"]
    print(
        f"REPORT rows={rf} wall_s={wf:.1f} rss_mb={mf:.0f} rss_ratio_4x={mf / mq:.3f} "
        f"wall_ratio_4x={wf / wq:.3f}"
    )


if __name__ == "__main__":
    main()
