"""The README's "Inside your own Beam pipeline" examples run as written (paths moved to a
temporary folder), with the real SST-2 teacher."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEACHER = ROOT.parent / "shared" / "models" / "sst2-minilm"


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Inside your own Beam pipeline", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_examples_of_the_transform_and_the_handler_run(tmp_path):
    if not TEACHER.exists():
        pytest.skip(f"no reference teacher at {TEACHER}")
    blocks = _blocks()
    assert len(blocks) == 2
    out = tmp_path / "api-kd"
    results = []
    for block in blocks:
        code = block.replace("data/api-kd", str(out))
        env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(done.stdout.strip().splitlines())
    transform, handler = results
    assert transform[-1] == "['negative', 'positive'] " + transform[0].split()[0]
    assert int(transform[0].split()[0]) > 3  # three originals and their samples
    assert (out / "manifest.json").exists() and not list(tmp_path.glob("api-kd.staging-*"))
    witty, cliches = json.loads(handler[-1])  # one chunk: a row of two logits per text
    assert len(witty) == len(cliches) == 2
    assert witty[1] > witty[0] and cliches[0] > cliches[1]  # positive, then negative
