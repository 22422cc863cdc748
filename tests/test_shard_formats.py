"""``--shard-format parquet``: the same rows as the Arrow shards, readable by every Parquet
reader, with the ``datasets`` Features (ClassLabel names) intact."""

from __future__ import annotations

import datasets
import pyarrow.dataset as pds
from conftest import build_set, head

from distill.data import load_transfer_set
from pipelines.transfer_set import open_set, read_manifest


def test_parquet_shards_hold_the_arrow_shards_rows_for_every_reader(
    glue_dir, tiny_teacher, tmp_path
):
    src = head(glue_dir / "SST-2" / "train.tsv", tmp_path / "sst2.tsv", 60)
    common = dict(n_iter=2, num_shards=2, teacher=str(tiny_teacher))
    build_set("sst2", src, tmp_path / "arrow", **common)
    build_set("sst2", src, tmp_path / "parquet", shard_format="parquet", **common)
    names = sorted(p.name for p in (tmp_path / "parquet").iterdir())
    assert [n for n in names if n.startswith("data-")] == [
        "data-00000-of-00002.parquet",
        "data-00001-of-00002.parquet",
    ]
    assert "state.json" not in names  # load_from_disk reads Arrow streams only
    arrow = datasets.load_from_disk(str(tmp_path / "arrow"))
    parquet = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "parquet" / "data-*.parquet"), split="train"
    )
    assert parquet.features == arrow.features  # ClassLabel names and all
    assert parquet.features["label"].names == ["negative", "positive"]
    assert parquet.to_list() == arrow.to_list()
    # the folder holds the card and JSON files too: readers take the shards' glob (README)
    shards = sorted(str(p) for p in (tmp_path / "parquet").glob("data-*.parquet"))
    table = pds.dataset(shards, format="parquet").to_table()
    assert table.num_rows == len(arrow)
    assert sorted(table.column("id").to_pylist()) == sorted(arrow["id"])
    # the project's own readers open either format
    assert open_set(str(tmp_path / "parquet")).to_list() == arrow.to_list()
    ds, manifest = load_transfer_set(str(tmp_path / "parquet"), "sst2")
    assert len(ds) == len(arrow) and manifest["shard_format"] == "parquet"
    assert read_manifest(str(tmp_path / "arrow")).shard_format == "arrow"
    assert "data-*.parquet" in (tmp_path / "parquet" / "README.md").read_text()
