"""One task registry (augment.tasks): every command accepts every name and alias of every task,
refuses an unknown one with one line and status 2, and no other module spells a task name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from augment.tasks import ALIASES, TASKS, get_task, has_gold
from distill.metrics import glue_metrics, main_metric
from transferset_cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
ALL_NAMES = sorted(set(TASKS) | set(ALIASES) | {n.upper() for n in TASKS})


def command_args(command: str, task: str, tmp: Path) -> list[str]:
    missing = str(tmp / "missing.tsv")
    return {
        "build": ["build", "--task", task, "--input", missing, "--out", str(tmp / "o")],
        "finetune-teacher": [
            "finetune-teacher", "--task", task, "--train", missing, "--dev", missing,
            "--out", str(tmp / "t"),
        ],
        "train-student": [
            "train-student", "--task", task, "--shards", str(tmp / "no-set"), "--eval", missing,
            "--out", str(tmp / "s"),
        ],
        "evaluate": ["evaluate", "--task", task, "--model", str(tmp / "m"), "--data", missing],
    }[command]  # fmt: skip


COMMANDS = ("build", "finetune-teacher", "train-student", "evaluate")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_name_and_alias_is_accepted_by_every_command(command, tmp_path, capsys):
    for name in ALL_NAMES:
        assert cli_main(command_args(command, name, tmp_path)) == 2
        err = capsys.readouterr().err.strip()
        # the task was accepted: what stops the command is the missing file, on one line
        assert "unknown task" not in err, (name, err)
        assert ("missing.tsv" in err or "no-set" in err) and "\n" not in err, (name, err)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_task_is_one_line_and_status_2(command, tmp_path, capsys):
    assert cli_main(command_args(command, "mnli-xx", tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"transferset {command}: error: unknown task 'mnli-xx'")
    assert "\n" not in err and "Traceback" not in err


def test_aliases_resolve_to_their_task():
    assert {a: get_task(a).name for a in ALIASES} == {
        "sst-2": "sst2",
        "sts-b": "stsb",
        "mnli-m": "mnli",
        "mnli-mm": "mnli",
        "mnli_matched": "mnli",
        "mnli_mismatched": "mnli",
    }
    assert get_task(" SST-2 ") is TASKS["sst2"]


def test_each_task_scores_its_own_metrics():
    rng = np.random.default_rng(0)
    for spec in TASKS.values():
        gold = rng.random(50) * 5 if spec.is_regression else rng.integers(0, spec.num_labels, 50)
        pred = gold + rng.normal(0, 0.5, 50) if spec.is_regression else gold.copy()
        if not spec.is_regression:
            pred[:10] = (pred[:10] + 1) % spec.num_labels  # 10 of 50 wrong
        m = glue_metrics(spec.name, pred, gold)
        assert list(m) == list(spec.metrics)
        assert main_metric(spec.name, m) == m[spec.main_metric]
        if "accuracy" in m:
            assert m["accuracy"] == pytest.approx(0.8)


def test_no_gold_label_is_minus_one_or_nan_for_numpy_and_torch():
    assert TASKS["sst2"].unlabelled == -1 and np.isnan(TASKS["stsb"].unlabelled)
    classes = np.array([1, -1, 0, -1])
    scores = np.array([0.5, np.nan, 4.0], dtype=np.float32)
    assert has_gold(classes).tolist() == [True, False, True, False]
    assert has_gold(scores).tolist() == [True, False, True]
    assert has_gold(torch.tensor(classes)).tolist() == [True, False, True, False]
    assert has_gold(torch.tensor(scores)).tolist() == [True, False, True]


def test_no_module_but_the_registry_spells_a_task_name():
    names = set(TASKS) | set(ALIASES)
    files = [ROOT / "transferset_cli.py"]
    for package in ("augment", "pipelines", "distill"):
        files += [p for p in (ROOT / package).glob("*.py") if p.name != "tasks.py"]
    found = [
        f"{p.relative_to(ROOT)}:{node.lineno} {node.value!r}"
        for p in files
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value.lower() in names
    ]  # fmt: skip
    assert found == []


def test_cli_defaults_are_the_config_defaults():
    """Each default lives in its dataclass: the flags derived from it parse to the same config."""
    from augment import AugmentConfig
    from augment.flags import from_args
    from distill.finetune import FinetuneConfig
    from distill.train import TrainConfig
    from pipelines.build import build_parser
    from pipelines.settings import ScaleConfig
    from pipelines.teacher import TeacherConfig
    from transferset_cli import finetune_parser, train_student_parser

    args, _ = build_parser().parse_known_args(["--task", "sst2", "--input", "x", "--out", "y"])
    assert from_args(AugmentConfig, args, mask_token=AugmentConfig.mask_token) == AugmentConfig()
    assert from_args(ScaleConfig, args) == ScaleConfig()
    assert from_args(TeacherConfig, args, prefix="teacher_", path="t") == TeacherConfig("t")
    args = train_student_parser().parse_args(
        ["--shards", "s", "--task", "sst2", "--eval", "e", "--out", "o"]
    )
    assert from_args(TrainConfig, args) == TrainConfig(task="sst2")
    args = finetune_parser().parse_args(
        ["--task", "sst2", "--train", "t", "--dev", "d", "--out", "o"]
    )
    assert from_args(FinetuneConfig, args, task="sst2") == FinetuneConfig(task="sst2")
    # and a flag does reach its field
    args, _ = build_parser().parse_known_args(
        [
            "--task",
            "sst2",
            "--input",
            "x",
            "--out",
            "y",
            "--n-iter",
            "7",
            "--teacher-max-batch",
            "8",
        ]
    )
    assert from_args(AugmentConfig, args, mask_token="[MASK]").n_iter == 7
    assert from_args(TeacherConfig, args, prefix="teacher_", path="t").max_batch == 8
