"""finetune-teacher: a few steps on real SST-2 lines, and the checkpoint feeds the build."""

from __future__ import annotations

import json

import datasets
import numpy as np

from distill.metrics import glue_metrics, main_metric
from pipelines import build
from transferset_cli import main as cli_main


def test_finetune_teacher_saves_a_checkpoint_the_build_loads(glue_dir, tiny_teacher, tmp_path):
    out = tmp_path / "teacher"
    code = cli_main(
        [
            "finetune-teacher",
            "--task",
            "sst2",
            "--train",
            str(glue_dir / "SST-2" / "train.tsv"),
            "--dev",
            str(glue_dir / "SST-2" / "dev.tsv"),
            "--limit",
            "200",
            "--base",
            str(tiny_teacher),
            "--out",
            str(out),
            "--max-steps",
            "5",
            "--batch-size",
            "16",
        ]
    )
    assert code == 0
    assert (out / "model.safetensors").exists() and not (out / "pytorch_model.bin").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    history = json.loads((out / "finetune.json").read_text())["history"]
    assert len(history) == 1
    # the saved checkpoint is the one that was scored: Student reproduces the dev accuracy
    from augment.tasks import get_task
    from distill import Student
    from pipelines.readers import read_examples

    dev = read_examples(str(glue_dir / "SST-2" / "dev.tsv"), get_task("sst2"))
    teacher = Student.load(str(out))
    labels = teacher.predict(list(dev["text_a"])).labels
    gold = [["negative", "positive"][y] for y in dev["label"]]
    assert np.mean(np.array(labels) == np.array(gold)) == history[0]["dev"]["accuracy"]
    assert np.isfinite(history[0]["train_loss"])
    shards = tmp_path / "set"
    build.run(
        [
            "--task",
            "sst2",
            "--input",
            str(glue_dir / "SST-2" / "dev.tsv"),
            "--limit",
            "20",
            "--out",
            str(shards),
            "--n-iter",
            "2",
            "--teacher",
            str(out),
        ]
    )
    ds = datasets.load_from_disk(str(shards))
    # the build's logits are this checkpoint's, in the task's label order
    direct = teacher.predict(list(ds["text_a"])).logits
    assert np.abs(np.asarray(list(ds["teacher_logits"])) - direct).max() < 1e-4


def test_glue_metrics_match_hand_computed_values():
    m = glue_metrics("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    assert m == {"accuracy": 0.75, "f1": 0.8}
    assert main_metric("mrpc", m) == 0.8
    cola = glue_metrics("cola", [1, 0, 1, 0], [1, 0, 1, 0])
    assert cola["matthews_correlation"] == 1.0
    sts = glue_metrics("sts-b", [0.0, 1.0, 2.0], [0.0, 2.0, 4.0])
    assert abs(sts["pearson"] - 1.0) < 1e-12 and abs(sts["spearmanr"] - 1.0) < 1e-12


def test_layer_decay_gives_each_layer_its_lr_and_every_parameter_one_group(tiny_teacher):
    """Layer-wise lr decay: the head at lr, encoder layer l of L at lr * d^(L - l), the
    embeddings at lr * d^(L + 1); no weight decay on biases and LayerNorm weights; d = 1 is
    one lr for all (the default)."""
    from transformers import AutoModelForSequenceClassification

    from distill.finetune import param_groups

    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    n_layers = model.config.num_hidden_layers  # 2
    where = {}  # parameter name -> (lr, weight decay)
    by_id = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, 1e-3, 0.01, layer_decay=0.5)
    for g in groups:
        for p in g["params"]:
            assert by_id[id(p)] not in where  # one group each
            where[by_id[id(p)]] = (g["lr"], g["weight_decay"])
    assert set(where) == set(by_id.values())
    for name, (lr, wd) in where.items():
        if ".layer." in name:
            layer = int(name.split(".layer.")[1].split(".")[0])
            assert lr == 1e-3 * 0.5 ** (n_layers - layer), name
        elif "embeddings" in name:
            assert lr == 1e-3 * 0.5 ** (n_layers + 1), name
        else:
            assert name.startswith(("classifier", "bert.pooler")) and lr == 1e-3, name
        assert wd == (0.0 if name.endswith(("bias", "LayerNorm.weight")) else 0.01), name
    assert {lr for lr, _ in where.values()} == {1e-3 * 0.5**k for k in range(n_layers + 2)}
    flat = param_groups(model, 1e-3, 0.01)
    assert {g["lr"] for g in flat} == {1e-3} and len(flat) == 2


def test_finetune_refuses_a_layer_decay_above_one(glue_dir, tmp_path, capsys):
    sst2 = glue_dir / "SST-2"
    argv = ["finetune-teacher", "--task", "sst2", "--train", str(sst2 / "train.tsv")]
    argv += ["--dev", str(sst2 / "dev.tsv"), "--out", str(tmp_path / "t"), "--layer-decay", "1.5"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["transferset finetune-teacher: error: --layer-decay is at most 1; got 1.5"]


def _argv(glue_dir, tmp_path, out, *more) -> list[str]:
    sst2 = glue_dir / "SST-2"
    argv = ["finetune-teacher", "--task", "sst2", "--train", str(sst2 / "train.tsv")]
    return argv + ["--dev", str(sst2 / "dev.tsv"), "--limit", "20", "--out", str(out), *more]


def test_finetune_refuses_an_out_of_other_files_or_the_base_and_touches_nothing(
    glue_dir, tiny_teacher, tmp_path, capsys
):
    """Each best epoch replaces --out whole, so a folder holding anything but a teacher this
    command wrote (say the folder of the training data) is refused before any work."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("sentence\tlabel\n")
    assert cli_main(_argv(glue_dir, tmp_path, data, "--base", str(tiny_teacher))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not write (no finetune.json)" in err[0], err
    assert [p.name for p in data.iterdir()] == ["train.tsv"]
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tiny_teacher.iterdir())
    assert cli_main(_argv(glue_dir, tmp_path, tiny_teacher, "--base", str(tiny_teacher))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the base model" in err[0], err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tiny_teacher.iterdir()) == before


def test_a_second_finetune_teacher_on_the_same_out_is_refused(
    glue_dir, tiny_teacher, tmp_path, capsys
):
    """The lock beside --out: while one run holds it, another says so in one line."""
    import fcntl
    import os

    out = tmp_path / "teacher"
    fd = os.open(f"{out}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run's lock (another open file: flock excludes it)
    try:
        assert cli_main(_argv(glue_dir, tmp_path, out, "--base", str(tiny_teacher))) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another process is writing --out" in err[0], err
    assert not out.exists()
    code = cli_main(_argv(glue_dir, tmp_path, out, "--base", str(tiny_teacher), "--epochs", "1"))
    assert code == 0 and (out / "finetune.json").exists()
    assert not (tmp_path / "teacher.lock").exists()  # released and removed at the end


def test_a_nan_metric_ranks_below_every_number():
    """Pearson of constant predictions is NaN: it must not block every later epoch."""
    nan = glue_metrics("stsb", [1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    assert np.isnan(nan["pearson"]) and main_metric("stsb", nan) == -np.inf
    assert main_metric("stsb", {"pearson": -0.9, "spearmanr": 0.0}) > main_metric("stsb", nan)
