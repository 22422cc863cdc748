"""Every GLUE format and the generic formats parse into Examples; bad rows become dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.tasks import get_task
from pipelines.readers import Columns, detect_format, read_file
from pipelines.records import DeadLetter, Example

FIX = Path(__file__).parent / "fixtures" / "glue"


def read(task, name, fmt="glue", limit=None):
    rows = list(read_file(str(FIX / name), get_task(task), fmt, Columns(), limit))
    assert all(isinstance(r, Example) for r in rows), [r for r in rows if isinstance(r, DeadLetter)]
    return rows


def test_sst2_real_lines():
    rows = read("sst2", "sst2_train.tsv")
    assert len(rows) == 5
    assert rows[0].text_a == "hide new secretions from the parental units "  # trailing space kept
    assert rows[0].label == 0 and rows[0].source_id == "0" and rows[0].line_number == 2
    assert [r.label for r in rows] == [0, 0, 1, 0, 0]


def test_mrpc_bom_and_quotes():
    rows = read("mrpc", "mrpc_train.tsv")
    assert len(rows) == 5
    assert rows[0].text_a.startswith('Amrozi accused his brother, whom he called "the witness"')
    assert rows[0].text_b.startswith('Referring to him as only "the witness"')
    assert rows[0].label == 1  # Quality 1 = equivalent
    assert get_task("mrpc").label_names[rows[0].label] == "equivalent"


def test_stsb_float_scores():
    rows = read("stsb", "stsb_dev.tsv")
    assert [r.label for r in rows] == [5.0, 4.75, 5.0]
    assert rows[0].text_a == "A man with a hard hat is dancing."


def test_cola_without_header_and_its_test_split_with_one():
    rows = read("cola", "cola_train.tsv")
    assert [r.label for r in rows] == [1, 0, 1]
    assert rows[2].text_a == 'The "sailors" rode the breeze clear of the rocks.'
    assert [r.source_id for r in rows] == ["0", "1", "2"]
    test = read("cola", "cola_test.tsv")
    assert [(r.source_id, r.label) for r in test] == [("0", -1), ("1", -1)]


def test_qqp_train_and_unlabelled_test():
    rows = read("qqp", "qqp_train.tsv")
    assert [(r.source_id, r.label) for r in rows] == [("133273", 0), ("402555", 1)]
    test = read("qqp", "qqp_test.tsv")
    assert test[0].label == -1 and test[0].text_b.startswith("Why are rockets")


def test_mnli_labels_in_datasets_order():
    rows = read("mnli", "mnli_train.tsv")
    # entailment, neutral, contradiction = 0, 1, 2 (Hugging Face datasets' order)
    assert [r.label for r in rows] == [1, 0, 0, 2]
    assert rows[0].text_b == "Product and geography are what make cream skimming work. "


@pytest.mark.parametrize(
    "task, name, labels",
    [
        ("qnli", "qnli_dev.tsv", [1, 1, 0]),
        ("rte", "rte_dev.tsv", [1, 0]),
        ("wnli", "wnli_train.tsv", [1, 1, 1, 0]),
    ],
)
def test_nli_style_tasks(task, name, labels):
    rows = read(task, name)
    assert [r.label for r in rows] == labels
    assert all(r.text_b for r in rows)


def test_limit_reads_the_first_rows():
    assert [r.source_id for r in read("sst2", "sst2_train.tsv", limit=2)] == ["0", "1"]


def test_generic_formats(tmp_path):
    spec = get_task("sst2")
    cols = Columns(text_a="review", label="stars", id="rid")
    (tmp_path / "a.csv").write_text('rid,review,stars\nr1,"fine, ""really"" fine",1\nr2,bad,0\n')
    rows = list(read_file(str(tmp_path / "a.csv"), spec, "csv", cols))
    assert rows == [
        Example("r1", 'fine, "really" fine', None, 1, str(tmp_path / "a.csv"), 2),
        Example("r2", "bad", None, 0, str(tmp_path / "a.csv"), 3),
    ]
    (tmp_path / "a.tsv").write_text('rid\treview\tstars\nr1\tsaid "hi\t1\n')
    assert next(read_file(str(tmp_path / "a.tsv"), spec, "tsv", cols)).text_a == 'said "hi'
    lines = [{"rid": 7, "review": "good", "stars": "positive"}, {"review": "meh"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rows = list(read_file(str(tmp_path / "a.jsonl"), spec, "jsonl", cols))
    assert rows[0].source_id == "7" and rows[0].label == 1
    assert isinstance(rows[1], DeadLetter) and rows[1].reason.startswith("missing label")
    pq.write_table(pa.table({"review": ["x y", "z"], "stars": [0, 1]}), tmp_path / "a.parquet")
    rows = list(read_file(str(tmp_path / "a.parquet"), spec, "parquet", cols))
    assert [(r.source_id, r.text_a, r.label) for r in rows] == [("0", "x y", 0), ("1", "z", 1)]
    (tmp_path / "a.txt").write_text("one sentence .\n\nanother one .\n")
    rows = list(read_file(str(tmp_path / "a.txt"), spec, "text"))
    assert rows[0] == Example("0", "one sentence .", None, -1, str(tmp_path / "a.txt"), 1)
    assert isinstance(rows[1], DeadLetter) and rows[1].reason == "empty text_a"
    assert rows[2].source_id == "2"
    with pytest.raises(ValueError, match="needs pairs"):
        list(read_file(str(tmp_path / "a.txt"), get_task("mrpc"), "text"))


def test_format_detection():
    assert detect_format("x/train.tsv", Columns()) == "glue"
    assert detect_format("x/train.tsv", Columns(text_a="t")) == "tsv"
    assert detect_format("gs://b/x.JSONL", Columns()) == "jsonl"
    assert detect_format("x.parquet", Columns()) == "parquet"
    assert detect_format("x.txt", Columns()) == "text"


def test_bad_lines_are_dead_lettered_with_reasons(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(
        b"sentence\tlabel\n"
        b"a good line .\t1\n"
        b"ragged line\t1\textra\n"
        b"  \t0\n"
        b"unknown label .\t7\n"
        b"bad bytes \xff\xfe here\t1\n"
        b"\n"
        b"last good one\t0\n"
    )
    rows = list(read_file(str(path), get_task("sst2"), "glue"))
    dead = {r.line_number: r.reason for r in rows if isinstance(r, DeadLetter)}
    assert [r.text_a for r in rows if isinstance(r, Example)] == ["a good line .", "last good one"]
    assert dead[3].startswith("ragged line: 3 fields, the header has 2")
    assert dead[4] == "empty text_a"
    assert dead[5].startswith("unknown label: '7'")
    assert dead[6].startswith("not UTF-8")
    assert dead[7] == "empty line"
    assert len(rows) == 7  # every data line is accounted for
    bad = [r for r in rows if isinstance(r, DeadLetter) and r.line_number == 6][0]
    assert "\\xff" in bad.raw


def test_pair_task_needs_a_second_column():
    with pytest.raises(ValueError, match="--text-b-column"):
        list(read_file(str(FIX / "sst2_train.tsv"), get_task("mrpc"), "tsv", Columns(text_a="x")))
