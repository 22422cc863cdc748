"""Students, losses and the training loop, offline from transfer sets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import FIX, build_set, make_tiny_teacher

from distill.api import load_model
from distill.data import check_labels, load_transfer_set
from distill.losses import ce, distillation_loss, kl, mse
from distill.models import teacher_layer_map, transformer_student
from distill.students import predict
from distill.train import TrainConfig, train_student
from transferset_cli import main as cli_main


# -- losses ----------------------------------------------------------------------------------------
def test_kl_of_identical_logits_is_zero_and_scales_with_t_squared():
    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    assert kl(x, x, temperature=3.0).item() == pytest.approx(0.0, abs=1e-7)
    s, t = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, -1.0]])
    for temp in (1.0, 2.0, 4.0):
        p = torch.softmax(t / temp, -1)
        q = torch.softmax(s / temp, -1)
        by_hand = (p * (p.log() - q.log())).sum().item() * temp**2
        assert kl(s, t, temperature=temp).item() == pytest.approx(by_hand, rel=1e-5)


def test_mse_and_ce_by_hand():
    s = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    t = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    assert mse(s, t).item() == pytest.approx((1 + 0 + 1 + 4) / 4)
    labels = torch.tensor([1, 0])
    by_hand = -(torch.log_softmax(s, -1)[0, 1] + torch.log_softmax(s, -1)[1, 0]) / 2
    assert ce(s, labels).item() == pytest.approx(by_hand.item())


def test_alpha_mixes_hard_and_soft_over_the_labelled_rows_only():
    s = torch.tensor([[1.0, 2.0], [0.0, -1.0], [0.5, 0.5]], requires_grad=True)
    t = torch.tensor([[0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    labels = torch.tensor([1, -1, 0])  # the middle row is an augmented sample
    got = distillation_loss(s, t, labels, loss="mse", alpha=0.25)
    want = 0.25 * ce(s[[0, 2]], labels[[0, 2]]) + 0.75 * mse(s, t)
    assert got.item() == pytest.approx(want.item())
    assert distillation_loss(s, t, labels, loss="mse").item() == pytest.approx(mse(s, t).item())
    # a batch with no gold row: the soft term still weighs 1 - alpha, not 1
    none = torch.tensor([-1, -1, -1])
    got_none = distillation_loss(s, t, none, loss="mse", alpha=0.25)
    assert got_none.item() == pytest.approx(0.75 * mse(s, t).item())
    got.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="gold labels"):
        distillation_loss(s, t, torch.tensor([-1, -1, -1]), loss="ce")
    with pytest.raises(ValueError, match="teacher logits"):
        distillation_loss(s, None, labels, loss="kl")


# -- students --------------------------------------------------------------------------------------
def test_transformer_student_starts_from_distilberts_choice_of_teacher_layers(tmp_path):
    import transformers

    teacher_dir = make_tiny_teacher(tmp_path / "t")
    cfg = json.loads((teacher_dir / "config.json").read_text())
    cfg["num_hidden_layers"] = 4
    (teacher_dir / "config.json").write_text(json.dumps(cfg))
    teacher = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg))
    teacher.save_pretrained(teacher_dir)
    student, _, mapping = transformer_student(str(teacher_dir), layers=2)
    assert mapping == [0, 3]  # first and last
    assert teacher_layer_map(12, 6) == [0, 2, 4, 7, 9, 11]  # the layers DistilBERT kept
    assert teacher_layer_map(6, 3) == [0, 3, 5] and teacher_layer_map(6, 1) == [0]
    assert teacher_layer_map(4, 4) == [0, 1, 2, 3]
    _, _, given = transformer_student(str(teacher_dir), layer_map="1,2")
    assert given == [1, 2]
    for bad in ("2,1", "0,0", "0,9", "a"):
        with pytest.raises(ValueError, match="layer-map"):
            transformer_student(str(teacher_dir), layer_map=bad)
    t, s = teacher.state_dict(), student.state_dict()
    for j, tj in enumerate(mapping):
        for name, value in s.items():
            if name.startswith(f"bert.encoder.layer.{j}."):
                twin = name.replace(f"layer.{j}.", f"layer.{tj}.", 1)
                assert torch.equal(value, t[twin]), name
    for name in ("bert.embeddings.word_embeddings.weight", "classifier.weight"):
        assert torch.equal(s[name], t[name])
    assert student.config.num_hidden_layers == 2


def saved_set(path: Path, texts, labels, logits, label_names=("negative", "positive")) -> Path:
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "source_id": datasets.Value("string"),
            "text_a": datasets.Value("string"),
            "text_b": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
            "is_original": datasets.Value("bool"),
            "ops": datasets.Value("string"),
            "teacher_logits": datasets.List(datasets.Value("float32")),
        }
    )
    n = len(texts)
    datasets.Dataset.from_dict(
        {
            "id": [str(i) for i in range(n)],
            "source_id": [str(i) for i in range(n)],
            "text_a": texts,
            "text_b": [None] * n,
            "label": labels,
            "is_original": [True] * n,
            "ops": [""] * n,
            "teacher_logits": logits,
        },
        features=features,
    ).save_to_disk(str(path))
    return path


def test_bilstm_overfits_32_examples_to_the_teacher(glue_dir, tmp_path):
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:33]
    texts = [line.split("\t")[0] for line in lines]
    gold = [int(line.split("\t")[1]) for line in lines]
    rng = np.random.default_rng(0)
    teacher_pred = [g if rng.random() > 0.2 else 1 - g for g in gold]  # not just the gold labels
    logits = [[2.0, -2.0] if p == 0 else [-2.0, 2.0] for p in teacher_pred]
    ds_path = saved_set(tmp_path / "set", texts, gold, logits)
    train, _ = load_transfer_set(str(ds_path), "sst2")
    cfg = TrainConfig(
        task="sst2",
        epochs=40,
        patience=40,
        optimizer="adam",
        lr=3e-3,
        batch_size=8,
        embeddings="random",
        embed_dim=32,
        hidden=32,
        fc=32,
    )
    train_student(cfg, train, train, str(tmp_path / "student"))
    adapter, _ = load_model(str(tmp_path / "student"))
    agree = (predict(adapter, texts).argmax(-1) == np.array(teacher_pred)).mean()
    assert agree >= 0.95


@pytest.fixture(scope="module")
def sst2_kd_200(glue_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("kd")
    teacher = make_tiny_teacher(root / "teacher")
    src = root / "sst2.tsv"
    src.write_text(
        "\n".join((glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[:201]) + "\n"
    )
    build_set("sst2", src, root / "set", n_iter=3, teacher=str(teacher))
    return root


@pytest.mark.parametrize("student", ["bilstm", "transformer"])
def test_each_student_trains_end_to_end(sst2_kd_200, glue_dir, student):
    root = sst2_kd_200
    out = root / f"student-{student}"
    argv = [
        "train-student",
        "--shards",
        str(root / "set"),
        "--task",
        "sst2",
        "--student",
        student,
        "--eval",
        str(glue_dir / "SST-2" / "dev.tsv"),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--loss",
        "kl",
        "--alpha",
        "0.5",
    ]
    if student == "transformer":
        argv += ["--teacher", str(root / "teacher"), "--layers", "1", "--max-steps", "5"]
    else:
        argv += ["--embeddings", "glove", "--two-channels"]
    assert cli_main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    best = max(metrics["history"], key=lambda h: h["dev"]["accuracy"])
    assert metrics["dev"] == best["dev"] and metrics["best_epoch"] == best["epoch"]
    if student == "bilstm":  # GloVe 50-d, two channels, hidden 150, fc 200: Tang's shape
        vocab = len(json.loads((out / "vocab.json").read_text())["words"]) + 3
        lstm = 2 * 4 * 150 * (100 + 150 + 2)
        assert metrics["parameters"] == 2 * vocab * 50 + lstm + 300 * 200 + 200 + 200 * 2 + 2
    assert (out / "curves.png").stat().st_size > 1000
    assert json.loads((out / "config.resolved.json").read_text())["student"] == student
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(out),
                "--task",
                "sst2",
                "--data",
                str(glue_dir / "SST-2" / "dev.tsv"),
            ]
        )
        == 0
    )
    assert not list(out.glob("eval-*")), "evaluate wrote into the model folder"
    result = json.loads(Path(f"{out}-eval-dev.tsv.json").read_text())
    assert result["rows"] == 872 and result["metrics"]["accuracy"] == pytest.approx(
        metrics["dev"]["accuracy"]
    )
    assert result["cpu_sentences_per_second"] > 0


def test_glove_words_join_the_vocabulary_and_keep_their_vectors(sst2_kd_200, tmp_path):
    """--glove-words N: GloVe's N most frequent words join the set's vocabulary as frozen rows;
    after training they still have exactly their GloVe vectors, the set's words have moved,
    and the trained folder, its ONNX export and its two-channel variant all read them."""
    from distill import Student
    from distill.export import export_model
    from distill.glove import glove_vectors, glove_words
    from distill.vocab import StudentVocab

    train, _ = load_transfer_set(str(sst2_kd_200 / "set"), "sst2")
    dev = train.filter(lambda r: r["is_original"])
    base = TrainConfig(task="sst2", epochs=1, hidden=8, fc=8, max_steps=5, glove_words=0)
    plain = train_student(base, train, dev, str(tmp_path / "plain"))
    metrics = train_student(replace(base, glove_words=500), train, dev, str(tmp_path / "glove"))
    set_words = StudentVocab.from_json((tmp_path / "plain" / "vocab.json").read_text()).words
    vocab = StudentVocab.from_json((tmp_path / "glove" / "vocab.json").read_text())
    top = glove_words()[:500]
    unseen = [w for w in top if w not in set(set_words)]
    assert vocab.words == set_words + unseen and len(unseen) > 100
    assert metrics["parameters"] - plain["parameters"] == 50 * len(unseen)
    encoder = load_model(str(tmp_path / "glove"))[0].model.encoder
    assert encoder.embed.num_embeddings == len(set_words)  # only these are trained
    table = encoder.table().detach()
    rows = [vocab.index[w] for w in unseen]
    assert torch.equal(table[rows], glove_vectors(["[PAD]", *unseen])[1:])  # row 0 is zeroed
    seen = [vocab.index[w] for w in set_words[3:] if w in set(top)]
    trained = glove_vectors(["[PAD]", *(set_words[i] for i in seen)])[1:]
    assert seen and not torch.equal(table[seen], trained)
    # a sentence of unseen words: [UNK]s without the extra rows, their own vectors with them
    texts = [" ".join(unseen[:6]), " ".join(unseen[6:9]) + " " + set_words[5]]
    student = Student.load(str(tmp_path / "glove"))
    ids = torch.tensor([vocab.index[w] for w in unseen[:6]])
    assert torch.equal(encoder.lookup(ids), table[ids])
    export_model(str(tmp_path / "glove"), str(tmp_path / "onnx"))
    onnx = Student.load(str(tmp_path / "onnx")).predict(texts).logits
    assert np.abs(onnx - student.predict(texts).logits).max() < 1e-5
    two = train_student(
        replace(base, glove_words=500, two_channels=True), train, dev, str(tmp_path / "two")
    )
    assert two["parameters"] - metrics["parameters"] == 50 * len(vocab.words) + 4 * 2 * 8 * 50
    assert TrainConfig(task="sst2").resolved().glove_words == 100_000  # the default
    assert TrainConfig(task="sst2", embeddings="random").resolved().glove_words == 0
    with pytest.raises(ValueError, match="--glove-words must be >= 0"):
        TrainConfig(task="sst2", glove_words=-1).resolved()


def test_pooling_defaults_to_max_for_pairs_and_last_for_single_sentences():
    defaults = {t: TrainConfig(task=t).resolved().pooling for t in ("sst2", "mrpc", "stsb", "qqp")}
    assert defaults == {"sst2": "last", "mrpc": "max", "stsb": "max", "qqp": "max"}
    assert TrainConfig(task="mrpc", pooling="last").resolved().pooling == "last"  # as given
    assert TrainConfig(task="sst2", pooling="max").resolved().pooling == "max"
    assert TrainConfig(task="mrpc").pooling is None  # resolved only where the task is known


def test_evaluate_scores_a_plain_teacher_checkpoint(sst2_kd_200, glue_dir, tmp_path):
    from augment.tasks import get_task
    from distill.evaluate import evaluate
    from pipelines.readers import read_examples

    dev = read_examples(str(glue_dir / "SST-2" / "dev.tsv"), get_task("sst2"), limit=50)
    result = evaluate(str(sst2_kd_200 / "teacher"), "sst2", dev)
    assert result["kind"] == "transformers" and result["rows"] == 50


def test_siamese_bilstm_trains_on_mrpc_rows(tmp_path):
    teacher = make_tiny_teacher(tmp_path / "t", labels=("not_equivalent", "equivalent"))
    build_set("mrpc", FIX / "mrpc_train.tsv", tmp_path / "set", n_iter=4, teacher=str(teacher))
    train, _ = load_transfer_set(str(tmp_path / "set"), "mrpc")
    dev = train.filter(lambda r: r["is_original"])
    metrics = train_student(
        TrainConfig(task="mrpc", epochs=2, embeddings="random", embed_dim=16, hidden=8, fc=8),
        train,
        dev,
        str(tmp_path / "student"),
    )
    adapter, meta = load_model(str(tmp_path / "student"))
    assert adapter.model.cfg.pairs and meta["label_names"] == ["not_equivalent", "equivalent"]
    # the saved weights are the best epoch's: scoring them again gives the reported numbers
    from distill.metrics import score_logits

    again = score_logits(
        "mrpc", predict(adapter, list(dev["text_a"]), list(dev["text_b"])), list(dev["label"])
    )
    assert again == pytest.approx(metrics["dev"]) and set(again) == {"accuracy", "f1"}


def test_bad_transfer_sets_fail_clearly(glue_dir, tmp_path):
    plain = tmp_path / "plain"
    build_set("sst2", FIX / "sst2_train.tsv", plain, n_iter=1)
    with pytest.raises(ValueError, match="no teacher_logits column.*--teacher"):
        load_transfer_set(str(plain), "sst2")
    assert len(load_transfer_set(str(plain), "sst2", need_logits=False)[0]) > 0
    with pytest.raises(ValueError, match="built for task 'sst2', not 'mrpc'"):
        load_transfer_set(str(plain), "mrpc")
    only_bad = tmp_path / "bad.tsv"
    only_bad.write_text("sentence\tlabel\nno label here\t\n")
    with pytest.raises(ValueError, match="no rows to write: 1 read, 1 dead-lettered"):
        build_set("sst2", only_bad, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    with pytest.raises(ValueError, match="is a regression task but the data has class labels"):
        check_labels(datasets.load_from_disk(str(plain)), "stsb")
    with pytest.raises(FileNotFoundError, match="not a transfer set"):
        load_transfer_set(str(tmp_path / "nothing"), "sst2")


def test_evaluation_batches_are_sorted_and_respect_rows_and_token_budget():
    from distill.batching import bucketed_batches

    lengths = np.array([5, 50, 7, 120, 9, 9, 64, 3, 33] * 30)
    batches = bucketed_batches(lengths, 16, max_tokens=400)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert (np.diff(lengths[flat]) >= 0).all()  # sorted by length
    for b in batches:
        assert len(b) <= 16 and (len(b) == 1 or len(b) * lengths[b].max() <= 400)
    assert [len(b) for b in bucketed_batches(lengths, 100)] == [100, 100, 70]
    training = bucketed_batches(lengths, 16, rng=np.random.default_rng(0))
    assert sorted(np.concatenate(training).tolist()) == list(range(len(lengths)))
