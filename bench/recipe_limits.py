"""What limits a distilled SST-2 student: how well it copies its teacher on the rows it was
trained on and on dev, and where its dev errors are.

    python bench/recipe_limits.py [ROW ...] [--sample 20000] [--glove-words N]

ROW is a row of ``bench/recipe_sst2.py`` (its student in ``data/quality/recipe/ROW``, its set
in ``data/quality/SET``); default: every finished row. For each it prints

- fit: agreement with the teacher's argmax and mean squared logit error on a seeded sample of
  the transfer set's rows (the rows it was trained on; originals and samples apart);
- dev: the same against the teacher's logits on SST-2 dev, plus accuracy where the teacher is
  right and where it is wrong, and for dev sentences with a word outside the student's
  vocabulary (an ``[UNK]``) apart from the rest;
- with ``--glove-words N``: dev accuracy of the same student given GloVe's N most frequent
  words after training (what ``train-student --glove-words N`` would have saved).

A student that copies the teacher on its training rows far better than on dev is limited by
its data (more and more varied samples help); one that cannot copy its training rows is limited
by its capacity; a student that agrees with the teacher everywhere is limited by the teacher.
The last line per row is ``LIMITS row=... fit_agree=... dev_agree=... dev_acc=...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: see bench/augment.py

import numpy as np  # noqa: E402

from augment.tagger import word_tokenizer  # noqa: E402
from bench._glue import glue_file  # noqa: E402
from bench.recipe_sst2 import ROWS, TEACHER, Q  # noqa: E402
from distill.vocab import UNK  # noqa: E402


def dev_rows() -> tuple[list[str], np.ndarray]:
    """SST-2 dev as ``evaluate`` reads it: texts and gold labels."""
    from augment.tasks import get_task
    from pipelines.readers import read_examples

    dev = read_examples(str(glue_file("SST-2/dev.tsv")), get_task("sst2"))
    return list(dev["text_a"]), np.asarray(list(dev["label"]))


def agreement(logits: np.ndarray, teacher_logits: np.ndarray) -> tuple[float, float]:
    """Share of rows with the teacher's argmax, and the mean squared logit error."""
    agree = float((logits.argmax(1) == teacher_logits.argmax(1)).mean())
    return agree, float(((logits - teacher_logits) ** 2).mean())


def with_glove_words(student, n: int):
    """``student`` (a trained BiLSTM) with GloVe's ``n`` most frequent words it lacks added as
    frozen rows, as ``train-student --glove-words n`` would have: training never sees those
    words, so this is the student that run would have saved (at the epoch this one kept)."""
    from dataclasses import replace

    from distill import Student
    from distill.glove import add_glove_words, glove_vectors
    from distill.models import BiLSTMStudent
    from distill.students import BiLSTMAdapter

    old = student.adapter.model
    if old.cfg.frozen_words or old.cfg.two_channels:
        raise ValueError("only a one-channel student without frozen rows")
    vocab, extra = add_glove_words(student.adapter.vocab, n)
    cfg = replace(old.cfg, vocab_size=len(vocab), frozen_words=len(extra))
    model = BiLSTMStudent(cfg)
    state = old.state_dict() | {"encoder.frozen": glove_vectors(["[PAD]", *extra])[1:]}
    model.load_state_dict(state)
    return Student(BiLSTMAdapter(model.eval(), vocab), student.meta)


def limits(name: str, sample: int, teacher_dev: np.ndarray, dev: tuple, glove: int) -> None:
    import datasets

    from distill import Student

    kd_set = ROWS[name][1]
    student = Student.load(str(Q / "recipe" / name), threads=1)
    ds = datasets.load_from_disk(str(Q / kd_set))
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(ds), size=min(sample, len(ds)), replace=False))
    rows = ds.select(idx)
    texts = list(rows["text_a"])
    original = np.asarray(list(rows["is_original"]))
    logits = np.asarray(list(rows["teacher_logits"]), dtype=np.float32)
    fit = {}
    for group, keep in (("originals", original), ("samples", ~original)):
        chosen = np.flatnonzero(keep)
        ours = student.predict([texts[i] for i in chosen]).logits
        fit[group] = agreement(ours, logits[chosen])
    dev_texts, gold = dev
    dev_logits = student.predict(dev_texts).logits
    pred, teacher_pred = dev_logits.argmax(1), teacher_dev.argmax(1)
    dev_agree, dev_mse = agreement(dev_logits, teacher_dev)

    def acc(keep, p=pred) -> float:
        return float((p[keep] == gold[keep]).mean())

    right = teacher_pred == gold
    # dev sentences with a word the student's vocabulary lacks ([UNK]) against the rest
    vocab = student.adapter.vocab  # the one Student.load read from vocab.json
    tokens = word_tokenizer(vocab.mask_token)(dev_texts)
    unk = vocab.index[UNK]
    unknown = np.asarray([unk in vocab.encode(t) for t in tokens])
    every = np.ones(len(gold), bool)
    print(f"{name} (set {kd_set}, {len(ds):,} rows; fit on {len(idx):,} sampled rows)")
    for group, (agree, mse) in fit.items():
        print(f"  fit {group:9s}: agrees with teacher {agree:.4f}, logit MSE {mse:.3f}")
    print(f"  dev          : agrees with teacher {dev_agree:.4f}, logit MSE {dev_mse:.3f}")
    print(
        f"  dev accuracy {acc(every):.4f}: {acc(right):.4f} where the teacher is right "
        f"({int(right.sum())}), {acc(~right):.4f} where it is wrong ({int((~right).sum())})"
    )
    for group, keep in (("with an unknown word", unknown), ("every word known", ~unknown)):
        agree = float((pred[keep] == teacher_pred[keep]).mean())
        print(
            f"  dev, {group} ({int(keep.sum())}): agrees with teacher {agree:.4f}, "
            f"accuracy {acc(keep):.4f}, teacher's {acc(keep, teacher_pred):.4f}"
        )
    cfg = student.adapter.model.cfg
    glove = 0 if cfg.frozen_words or cfg.two_channels else glove  # trained with --glove-words
    if glove:
        extended = with_glove_words(student, glove).predict(dev_texts).logits.argmax(1)
        print(
            f"  dev accuracy with GloVe's {glove:,} most frequent words added after training: "
            f"{acc(every, extended):.4f} ({acc(unknown, extended):.4f} on the {int(unknown.sum())} "
            f"sentences with a word the set lacks)"
        )
    print(
        f"LIMITS row={name} fit_agree={fit['samples'][0]:.4f} dev_agree={dev_agree:.4f} "
        f"fit_mse={fit['samples'][1]:.3f} dev_mse={dev_mse:.3f} dev_acc={acc(every):.4f} "
        f"unknown_sentences={int(unknown.sum())} dev_acc_unknown={acc(unknown):.4f} "
        f"dev_acc_known={acc(~unknown):.4f}"
        + (f" dev_acc_glove={acc(every, extended):.4f}" if glove else ""),
        flush=True,
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="*", help="recipe rows (default: every finished one)")
    ap.add_argument("--sample", type=int, default=20000, help="transfer-set rows to compare on")
    ap.add_argument(
        "--glove-words",
        type=int,
        default=0,
        help="also score each one-channel student with GloVe's N words added after training",
    )
    args = ap.parse_args(argv)
    names = args.rows or [n for n in ROWS if (Q / "recipe" / n / "eval.json").exists()]
    unknown = [n for n in names if n not in ROWS or not (Q / "recipe" / n / "eval.json").exists()]
    if unknown:
        ap.error(f"no finished recipe row {unknown[0]!r} (see bench/recipe_sst2.py --table)")
    from distill import Student

    dev = dev_rows()
    teacher = Student.load(str(TEACHER), threads=1)
    teacher_dev = teacher.predict(dev[0]).logits
    print(f"teacher dev accuracy {float((teacher_dev.argmax(1) == dev[1]).mean()):.4f}")
    for name in names:
        limits(name, args.sample, teacher_dev, dev, args.glove_words)


if __name__ == "__main__":
    main()
