"""`transferset report` and `transferset demo --quick`, end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
from conftest import FIX, build_set, make_tiny_teacher

from transferset_cli import main as cli_main


def referenced_pngs(report: Path) -> list[Path]:
    names = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report.read_text())
    return [report.parent / n for n in names]


def assert_valid_pngs(paths: list[Path]) -> None:
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
        pixels = mpimg.imread(p)
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50


def test_report_on_a_tiny_transfer_set(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t")
    bad = tmp_path / "in.tsv"
    bad.write_text((FIX / "sst2_train.tsv").read_text() + "no label\t\n")
    out = tmp_path / "set"
    build_set("sst2", bad, out, n_iter=6, teacher=str(teacher))
    assert cli_main(["report", str(out)]) == 0
    report = out / "report.md"
    text = report.read_text()
    pngs = referenced_pngs(report)
    assert {p.name for p in pngs} == {
        "lengths.png",
        "teacher_confidence.png",
        "teacher_entropy.png",
        "label_distribution.png",
        "yield.png",
    }
    assert_valid_pngs(pngs)
    assert "| unknown label | 1 |" in text and "## Mix of ops" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"| written | {manifest['counts']['written']:,} |" in text


def test_report_without_teacher_logits(tmp_path):
    out = tmp_path / "set"
    build_set("sst2", FIX / "sst2_train.tsv", out, n_iter=2)
    assert cli_main(["report", str(out), "--out", str(tmp_path / "r")]) == 0
    report = tmp_path / "r" / "report.md"
    assert "No teacher logits" in report.read_text()
    assert_valid_pngs(referenced_pngs(report))


def test_demo_quick_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results] == [
        "teacher (MiniLM, fine-tuned)",
        "BiLSTM, gold labels only",
        "BiLSTM, distilled (augmented transfer set)",
    ]
    for r in results:
        assert r["parameters"] > 0 and r["cpu_sentences_per_second"] > 0
    # the fine-tuned teacher learned something (chance is about 0.5 on these 100 dev rows;
    # 0.64 with the fixed seed), and each student's saved weights are its best epoch's
    assert results[0]["dev_accuracy"] >= 0.6
    for k, r in enumerate(results[1:]):
        trained = json.loads((out / f"student-{k}" / "metrics.json").read_text())
        assert r["dev_accuracy"] == trained["dev"]["accuracy"]
    report = out / "report.md"
    assert report.read_text().startswith("# transferset demo")
    assert_valid_pngs(referenced_pngs(report))
    assert (out / "teacher" / "model.safetensors").exists()
