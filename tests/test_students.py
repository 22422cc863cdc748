"""Students people can ship: the fast tokenisation path, ONNX export, the Python API, the
set's mask token, and safe checkpoint loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from conftest import FIX, build_set, make_tiny_teacher
from test_distill import saved_set

from augment import word_tokenizer
from distill import Student
from distill.api import load_model
from distill.batching import Ragged
from distill.export import export_model, probe_texts
from distill.students import TransformerAdapter, predict
from distill.train import TrainConfig, train_student
from distill.vocab import StudentVocab, WordIds, count_words
from transferset_cli import main as cli_main

EDGE = [
    "",
    "   ",
    "well[MASK]made [MASK] , Ünïcode ² naïve café",
    "[mask] [Mask] <mask> <MASK>",
    "A\n\nB  C\t d",
    "[UNK] [PAD] root prep number",  # "root", "prep": spaCy symbols with small fixed ids
    "can't won't gonna U.S. e-mail",
]


def sst2_texts(glue_dir, n: int) -> list[str]:
    lines = (glue_dir / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1 : n + 1]
    return [line.split("\t")[0] for line in lines]


# -- tokenisation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", ["[MASK]", "<mask>"])
def test_word_ids_are_the_ids_training_saw(glue_dir, mask):
    texts = sst2_texts(glue_dir, 3000) + EDGE
    texts += [t.replace(" the ", f" {mask} ") for t in texts[:200]]
    tokenize = word_tokenizer(mask)
    vocab = StudentVocab.build(tokenize(texts[:2000]), mask_token=mask)  # later texts have OOVs
    slow = [vocab.encode(tokens) for tokens in tokenize(texts)]
    fast = WordIds.for_vocab(vocab)(texts)
    assert fast.to_lists() == slow
    assert any(1 in row for row in slow) and any(2 in row for row in slow)  # [UNK] and mask seen
    # the vocabulary counted a batch at a time is the vocabulary counted at once
    counts = count_words(WordIds(mask), [texts[:700], texts[700:2000]])
    assert StudentVocab.from_counts(counts, mask_token=mask).words == vocab.words


def test_ragged_pads_rows_and_reads_sliced_arrow_lists():
    rows = [[5, 6, 7], [1], [], [8, 9]]
    r = Ragged.from_lists(rows)
    ids, lengths = r.rows([3, 0, 2], pad=-1)
    assert lengths.tolist() == [2, 3, 0]
    assert ids.tolist() == [[8, 9, -1], [5, 6, 7], [-1, -1, -1]]
    arrow = pa.array(rows, type=pa.list_(pa.int32())).slice(1, 3)  # offsets not starting at 0
    back = Ragged.from_arrow(pa.chunked_array([arrow]))
    assert back.to_lists() == rows[1:]
    assert Ragged.from_arrow(pa.chunked_array([arrow[:1], arrow[1:]])).to_lists() == rows[1:]


# -- students that learn, export and serve ---------------------------------------------------------
POS, NEG = ("good", "great", "fine"), ("bad", "awful", "dull")
FILLER = "the a film movie story is was it and of plot very quite this that".split()


def separable(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Texts whose label is the polarity of the one sentiment word in them."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(2, 9))))
        words.insert(int(rng.integers(len(words) + 1)), rng.choice(POS if label else NEG))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


SMALL = dict(embeddings="random", embed_dim=16, hidden=16, fc=16, optimizer="adam", lr=5e-3)


@pytest.fixture(scope="module")
def trained_bilstm(tmp_path_factory):
    root = tmp_path_factory.mktemp("bilstm")
    texts, labels = separable(300, seed=0)
    logits = [[-2.0, 2.0] if y else [2.0, -2.0] for y in labels]
    ds = __import__("datasets").load_from_disk(str(saved_set(root / "set", texts, labels, logits)))
    dev_texts, dev_labels = separable(100, seed=1)
    dev = saved_set(root / "dev", dev_texts, dev_labels, [[0.0, 0.0]] * 100)
    dev = __import__("datasets").load_from_disk(str(dev))
    cfg = TrainConfig(task="sst2", epochs=8, patience=8, batch_size=16, **SMALL)
    metrics = train_student(cfg, ds, dev, str(root / "student"))
    return root, metrics, dev_texts, dev_labels


def test_bilstm_learns_a_separable_set_and_serves_through_the_api(trained_bilstm):
    root, metrics, texts, labels = trained_bilstm
    assert metrics["dev"]["accuracy"] >= 0.95  # chance is 0.5
    assert not (root / "student" / ".encoded").exists()  # the encoding cache is removed
    student = Student.load(str(root / "student"))
    out = student.predict(texts)
    assert out.labels == [["negative", "positive"][i] for i in out.logits.argmax(1)]
    assert (
        np.mean(
            [lab == ["negative", "positive"][y] for lab, y in zip(out.labels, labels, strict=True)]
        )
        > 0.95
    )
    assert out.scores is None and out.logits.shape == (100, 2)
    adapter, _ = load_model(str(root / "student"))
    np.testing.assert_array_equal(out.logits, predict(adapter, texts))
    quantized = Student.load(str(root / "student"), quantize=True).predict(texts)
    assert quantized.labels == out.labels and np.abs(quantized.logits - out.logits).max() < 0.1
    with pytest.raises(TypeError, match="lists of texts"):
        student.predict("one text")
    assert student.predict([]).logits.shape == (0, 2)
    # numpy arrays of strings are texts too; a second text for a one-sentence student is refused
    np.testing.assert_array_equal(student.predict(np.array(texts)).logits, out.logits)
    with pytest.raises(ValueError, match="single sentences"):
        student.predict(texts, texts)
    with pytest.raises(TypeError, match="must be strings"):
        student.predict(["fine", 3])
    probs = out.probabilities
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs.argmax(1) == out.logits.argmax(1)).all()
    assert repr(student).startswith("Student(task='sst2', kind='bilstm', labels=['negative', ")
    mask = os.umask(0)
    os.umask(mask)
    mode = (root / "student" / "model.safetensors").stat().st_mode & 0o777
    assert mode == 0o666 & ~mask  # readable by whoever serves it, as any new file


def test_bilstm_exports_to_onnx_with_the_same_logits(trained_bilstm, tmp_path):
    root, metrics, texts, labels = trained_bilstm
    info = export_model(str(root / "student"), str(tmp_path / "onnx"))
    assert info["max_abs_diff_vs_torch"] < 1e-5 and info["inputs"] == ["ids", "lengths"]
    assert info["tokenizer"]["mask_token"] == "[MASK]" and info["label_names"] == [
        "negative",
        "positive",
    ]
    assert {p.name for p in (tmp_path / "onnx").iterdir()} == {
        "model.onnx",
        "vocab.json",
        "export.json",
    }
    torch_out = Student.load(str(root / "student")).predict(texts + probe_texts())
    onnx = Student.load(str(tmp_path / "onnx"))
    assert onnx.kind == "bilstm-onnx"
    onnx_out = onnx.predict(texts + probe_texts(), batch_size=7)  # ragged batches, any size
    assert np.abs(onnx_out.logits - torch_out.logits).max() < 1e-5
    int8 = export_model(str(root / "student"), str(tmp_path / "int8"), quantize=True)
    assert int8["quantized"] and 0 < int8["max_abs_diff_quantized_vs_torch"] < 0.2
    int8_out = Student.load(str(tmp_path / "int8")).predict(texts)
    assert np.mean(np.array(int8_out.labels) == np.array(torch_out.labels[:100])) >= 0.98
    with pytest.raises(ValueError, match="not empty"):
        export_model(str(root / "student"), str(tmp_path / "onnx"))


def test_an_export_off_its_model_is_refused_and_out_is_left_as_it_was(
    trained_bilstm, tmp_path, monkeypatch
):
    import distill.export as export

    root = trained_bilstm[0]
    kept = tmp_path / "kept"
    export_model(str(root / "student"), str(kept))
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    monkeypatch.setattr(export, "QUANTIZED_TOLERANCE", -1.0)  # every int8 graph is refused
    (tmp_path / "empty").mkdir()
    for name, overwrite in (("new", False), ("empty", False), ("kept", True)):
        with pytest.raises(RuntimeError, match=r"int8 graph's mean difference .* is [0-9.e-]+, "):
            export_model(
                str(root / "student"), str(tmp_path / name), quantize=True, overwrite=overwrite
            )
    assert not (tmp_path / "new").exists() and not any((tmp_path / "empty").iterdir())
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before  # --overwrite kept the old
    argv = ["export", str(root / "student"), "--out", str(tmp_path / "cli"), "--quantize"]
    assert cli_main(argv) == 2 and not (tmp_path / "cli").exists()
    monkeypatch.setattr(export, "FP32_TOLERANCE", -1.0)
    with pytest.raises(
        RuntimeError, match="fp32 graph's largest difference .* a bug in the export"
    ):
        export_model(str(root / "student"), str(tmp_path / "fp32"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "kept"]  # no staging left
    monkeypatch.undo()
    info = export_model(str(root / "student"), str(kept), overwrite=True, quantize=True)
    assert info["quantized"] and json.loads((kept / "export.json").read_text())["quantized"]
    mask = os.umask(0)
    os.umask(mask)
    assert kept.stat().st_mode & 0o777 == 0o777 & ~mask  # the swapped-in folder, not mkdtemp's


def test_an_export_killed_while_it_writes_leaves_the_old_one_whole(trained_bilstm, tmp_path):
    """kill -9 of a real ``transferset export --overwrite`` while its staging folder exists."""
    import subprocess
    import sys
    import time

    from test_scale_resume import kill_group

    root = trained_bilstm[0]
    kept = tmp_path / "kept"
    export_model(str(root / "student"), str(kept))
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]), OMP_NUM_THREADS="1")
    argv = ["export", str(root / "student"), "--out", str(kept), "--overwrite", "--quantize"]

    def writing() -> bool:  # a staging folder with files but no export.json: before the swap
        return any(not (p.parent / "export.json").exists()
                   for p in tmp_path.glob("kept.exporting-*/vocab.json"))  # fmt: skip

    killed = 0
    for _ in range(3):  # the window is short: try again where the export finished first
        proc = subprocess.Popen(
            [sys.executable, "-m", "transferset_cli", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while proc.poll() is None and not writing() and time.time() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            kill_group(proc)
            killed += 1
            break
        assert proc.returncode == 0
        before = {p.name: p.read_bytes() for p in kept.iterdir()}  # it finished: the new one
    assert killed and {p.name: p.read_bytes() for p in kept.iterdir()} == before
    assert [p.name.split("-")[0] for p in tmp_path.glob("kept.exporting-*")] == ["kept.exporting"]
    info = export_model(str(root / "student"), str(kept), overwrite=True)  # works after the kill
    assert info["max_abs_diff_vs_torch"] < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # the kill's folder is removed


def test_a_second_export_into_one_out_stops_and_leaves_the_first_ones_folder(
    trained_bilstm, tmp_path
):
    from distill.checkpoints import hold_lock

    root = trained_bilstm[0]
    out = tmp_path / "out"
    export_model(str(root / "student"), str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    staging = tmp_path / "out.exporting-0123456789ab"  # the first export's, mid-write
    staging.mkdir()
    (staging / "vocab.json").write_text("{}")
    fd = hold_lock(str(tmp_path / "out.lock"), "the first export")
    try:
        with pytest.raises(ValueError, match="another process is writing --out"):
            export_model(str(root / "student"), str(out), overwrite=True)
    finally:
        os.close(fd)
    assert (staging / "vocab.json").read_text() == "{}"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    info = export_model(str(root / "student"), str(out), overwrite=True)  # free again
    assert info["max_abs_diff_vs_torch"] < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # swept, unlocked


def test_an_export_into_a_link_or_a_mount_point(trained_bilstm, tmp_path, monkeypatch):
    import subprocess

    import distill.export as export

    model = str(trained_bilstm[0] / "student")
    real, link = tmp_path / "real", tmp_path / "link"
    export_model(model, str(real))
    link.symlink_to(real)
    export_model(model, str(link) + "/", overwrite=True, quantize=True)  # a trailing slash too
    assert link.is_symlink() and json.loads((real / "export.json").read_text())["quantized"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("mounting is not allowed here")
    try:  # a mount point cannot be swapped: written in place, and a refused graph leaves it empty
        export_model(model, str(mnt))
        assert (mnt / "export.json").exists() and os.path.ismount(mnt)
        monkeypatch.setattr(export, "QUANTIZED_TOLERANCE", -1.0)
        with pytest.raises(RuntimeError, match="int8 graph's mean difference"):
            export_model(model, str(mnt), overwrite=True, quantize=True)
        assert os.path.ismount(mnt) and not any(mnt.iterdir())
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_evaluate_scores_an_export_like_the_trained_folder(trained_bilstm, tmp_path):
    root, metrics, _, _ = trained_bilstm
    assert cli_main(["export", str(root / "student"), "--out", str(tmp_path / "e")]) == 0
    for model in (root / "student", tmp_path / "e"):
        out = tmp_path / f"{model.name}.json"
        argv = ["evaluate", "--model", str(model), "--task", "sst2", "--data", str(root / "dev")]
        assert cli_main([*argv, "--out", str(out)]) == 0
        result = json.loads(out.read_text())
        assert result["metrics"]["accuracy"] == pytest.approx(metrics["dev"]["accuracy"])
        assert result["parameters"] == metrics["parameters"]


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_siamese_bilstm_learns_pairs_and_exports(tmp_path, pooling):
    import datasets

    rng = np.random.default_rng(0)

    def pairs(n):
        a, _ = separable(n, seed=int(rng.integers(1 << 30)))
        b, _ = separable(n, seed=int(rng.integers(1 << 30)))
        same = [
            int(any(w in x.split() for w in POS) == any(w in y.split() for w in POS))
            for x, y in zip(a, b, strict=True)
        ]
        return a, b, same

    def save(path, a, b, y):
        feats = datasets.Features(
            {
                "text_a": datasets.Value("string"),
                "text_b": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["not_equivalent", "equivalent"]),
                "is_original": datasets.Value("bool"),
                "teacher_logits": datasets.List(datasets.Value("float32")),
            }
        )
        soft = [[-2.0, 2.0] if v else [2.0, -2.0] for v in y]
        rows = {"text_a": a, "text_b": b, "label": y, "is_original": [True] * len(a)}
        datasets.Dataset.from_dict(rows | {"teacher_logits": soft}, features=feats).save_to_disk(
            str(path)
        )
        return datasets.load_from_disk(str(path))

    train = save(tmp_path / "train", *pairs(600))
    dev_a, dev_b, dev_y = pairs(150)
    dev = save(tmp_path / "dev", dev_a, dev_b, dev_y)
    cfg = TrainConfig(task="mrpc", epochs=10, patience=10, batch_size=16, pooling=pooling, **SMALL)
    metrics = train_student(cfg, train, dev, str(tmp_path / "student"))
    assert metrics["dev"]["accuracy"] >= 0.9  # both polarities must be read and compared
    info = export_model(str(tmp_path / "student"), str(tmp_path / "onnx"))
    assert info["inputs"] == ["ids", "lengths", "ids_b", "lengths_b"] and info["pairs"]
    student = Student.load(str(tmp_path / "student"))
    assert student.adapter.model.cfg.pooling == pooling  # saved and loaded with the weights
    torch_out = student.predict(dev_a, dev_b)
    onnx_out = Student.load(str(tmp_path / "onnx")).predict(dev_a, dev_b, batch_size=7)
    assert np.abs(onnx_out.logits - torch_out.logits).max() < 1e-5  # ragged batches, any size
    alone = student.predict(dev_a[:1], dev_b[:1]).logits  # no padding: the same row's logits
    assert np.abs(alone - torch_out.logits[:1]).max() < 1e-5
    # int8: the two encoders share W and R, which ONNX Runtime's LSTM quantizer mishandles
    int8 = export_model(str(tmp_path / "student"), str(tmp_path / "int8"), quantize=True)
    assert 0 < int8["mean_abs_diff_quantized_vs_torch"] < 0.05
    int8_out = Student.load(str(tmp_path / "int8")).predict(dev_a, dev_b)
    assert np.abs(int8_out.logits - torch_out.logits).mean() < 0.05
    assert np.mean(np.array(int8_out.labels) == np.array(torch_out.labels)) >= 0.98
    with pytest.raises(ValueError, match="150 texts but 3 second texts"):
        Student.load(str(tmp_path / "student")).predict(dev_a, dev_b[:3])


def test_transformer_student_exports_with_its_tokenizer(tmp_path):
    from distill.models import transformer_student

    teacher = make_tiny_teacher(tmp_path / "t")
    model, tokenizer, _ = transformer_student(str(teacher), layers=1)
    TransformerAdapter(model.eval(), tokenizer, 64).save(
        str(tmp_path / "student"), {"task": "sst2", "label_names": ["negative", "positive"]}
    )
    info = export_model(str(tmp_path / "student"), str(tmp_path / "onnx"))
    assert info["kind"] == "transformer" and info["inputs"][:2] == ["input_ids", "attention_mask"]
    texts = probe_texts()
    torch_out = Student.load(str(tmp_path / "student")).predict(texts)
    onnx_out = Student.load(str(tmp_path / "onnx")).predict(texts, batch_size=5)
    assert np.abs(onnx_out.logits - torch_out.logits).max() < 1e-4
    assert onnx_out.labels == torch_out.labels


def test_regression_students_return_scores(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=None)
    out = Student.load(str(teacher)).predict(["a good film", "bad"], ["a fine movie", "good"])
    assert out.labels is None and out.scores.shape == (2,) and out.logits.shape == (2, 1)
    np.testing.assert_array_equal(out.scores, out.logits[:, 0])


# -- the set's mask token, safe loading, the CLI ---------------------------------------------------
def test_student_uses_the_mask_token_the_set_was_built_with(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t")
    build_set(
        "sst2",
        FIX / "sst2_train.tsv",
        tmp_path / "set",
        n_iter=4,
        p_mask=0.5,
        p_pos=0.0,
        mask_token="<mask>",
        teacher=str(teacher),
    )
    argv = ["train-student", "--shards", str(tmp_path / "set"), "--task", "sst2"]
    argv += ["--eval", str(tmp_path / "set"), "--out", str(tmp_path / "s"), "--epochs", "1"]
    argv += ["--embeddings", "random", "--embed-dim", "8", "--hidden", "8", "--fc", "8"]
    assert cli_main(argv) == 0
    vocab = StudentVocab.from_json((tmp_path / "s" / "vocab.json").read_text())
    assert vocab.mask_token == "<mask>" and vocab.words[2] == "<mask>"
    assert "mask" not in vocab.index and "<" not in vocab.index  # never split into pieces
    ids = WordIds.for_vocab(vocab)(["a <mask> film", "<mask>"]).to_lists()
    assert ids[0][1] == 2 and ids[1] == [2]


def test_pickle_checkpoints_need_allow_pickle(tmp_path):
    import transformers

    from distill.models import transformer_student

    teacher = make_tiny_teacher(tmp_path / "t")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(teacher)
    (teacher / "model.safetensors").unlink()
    torch.save(model.state_dict(), teacher / "pytorch_model.bin")  # an old-style checkpoint
    with pytest.raises(ValueError, match="pickle checkpoint.*--allow-pickle"):
        transformer_student(str(teacher), layers=1)
    with pytest.raises(ValueError, match="--allow-pickle"):
        load_model(str(teacher))
    student, _, _ = transformer_student(str(teacher), layers=1, allow_pickle=True)
    assert student.config.num_hidden_layers == 1
    adapter, _ = load_model(str(teacher), allow_pickle=True)
    assert torch.equal(
        adapter.model.classifier.weight, model.classifier.weight
    )  # the same weights, loaded once allowed


def test_export_bad_arguments_are_one_line_and_status_2(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("transferset export: error:")
    assert cli_main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'x'" in err[0]


def test_export_onto_its_own_model_folder_is_refused(trained_bilstm, capsys):
    model = trained_bilstm[0] / "student"
    before = sorted(p.name for p in model.iterdir())
    for out in (model, model.parent):
        assert cli_main(["export", str(model), "--out", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "would delete the model being exported" in err[0]
    assert sorted(p.name for p in model.iterdir()) == before


def test_a_plain_classifier_checkpoint_exports_with_its_label_names(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t")
    info = export_model(str(teacher), str(tmp_path / "onnx"))
    assert info["label_names"] == ["negative", "positive"]
    texts = probe_texts(16)
    torch_out = Student.load(str(teacher)).predict(texts)
    onnx_out = Student.load(str(tmp_path / "onnx")).predict(texts)
    assert onnx_out.labels == torch_out.labels and onnx_out.scores is None


def _readme_serving_snippet() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("#### Serving without this repo", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"augment", "pipelines", "distill", "transferset_cli"}:
            raise ImportError(f"the serving snippet imported {name}")
sys.meta_path.insert(0, _Block())
"""


def test_the_readme_serving_snippet_gives_student_predicts_logits_without_this_repo(
    glue_dir, tmp_path
):
    import csv
    import subprocess
    import sys

    with open(glue_dir / "SST-2" / "train.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:401]
    texts, labels = [r[0] for r in rows], [int(r[1]) for r in rows]
    logits = [[-2.0, 2.0] if y else [2.0, -2.0] for y in labels]
    ds = __import__("datasets").load_from_disk(
        str(saved_set(tmp_path / "set", texts, labels, logits))
    )
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=32, **SMALL)
    train_student(cfg, ds, ds.select(range(50)), str(tmp_path / "student"))
    info = export_model(str(tmp_path / "student"), str(tmp_path / "onnx"))
    assert info["contract"]["inputs"][0] == {
        "name": "ids", "dtype": "int64", "shape": ["batch", "seq"],
        "is": "token ids, each row padded with 0 at its end",
    }  # fmt: skip
    assert info["contract"]["outputs"][0]["shape"] == ["batch", 2]
    with open(glue_dir / "SST-2" / "dev.tsv", encoding="utf-8") as f:
        dev = [r[0] for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:201]
    masked = [
        " ".join("[MASK]" if i % 3 == 1 else w for i, w in enumerate(t.split())) for t in dev[:50]
    ]
    edge = ["", "   ", "\t\n", "well[MASK]made", "[MASK]", "[mask] lower", "UPPER Case",
            "zzqx unknownword", "emoji 🎬 !!", "a  double  space", "'s n't"]  # fmt: skip
    edge.append("[PAD] [UNK]")
    probe = dev + masked + edge
    (tmp_path / "texts.json").write_text(json.dumps(probe))
    code = (
        BLOCK
        + _readme_serving_snippet().replace("models/bilstm-kd-onnx", str(tmp_path / "onnx"))
        + (
            f"\nimport json\nnp.save({str(tmp_path / 'got.npy')!r}, "
            f"predict(json.load(open({str(tmp_path / 'texts.json')!r}))))\n"
        )
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "got.npy")
    want = Student.load(str(tmp_path / "onnx")).predict(probe).logits
    np.testing.assert_allclose(got, want, atol=1e-6)
    torch_want = Student.load(str(tmp_path / "student")).predict(probe).logits
    np.testing.assert_allclose(got, torch_want, atol=1e-5)
