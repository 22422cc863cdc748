"""The transfer-set folder, the one place that knows its format: the file names, the typed
``Manifest`` (with its ``Counts``), and how the JSON files beside the shards are written and
read. The build writes through it; ``report``, ``train-student`` and the demo read through it.

Beam-free at import (``distill`` reads sets through it); writing goes through
``apache_beam.io.filesystems`` so ``gs://`` / ``s3://`` folders work.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import asdict, dataclass, field, fields

SHARD_FORMATS = ("arrow", "parquet")  # Arrow IPC streams (datasets' own format), or Parquet


def data_glob(shard_format: str) -> str:
    """The glob of a set's shards: ``data-*.arrow`` (not ``*.arrow``, which also matches the
    ``cache-*.arrow`` files a later ``Dataset.map`` writes beside them) or ``data-*.parquet``."""
    return f"data-*.{shard_format}"


DATA_GLOBS = tuple(data_glob(fmt) for fmt in SHARD_FORMATS)
DATASET_INFO = "dataset_info.json"
STATE = "state.json"  # what datasets.load_from_disk reads
MANIFEST = "manifest.json"
CARD = "README.md"
REPORT = "report.md"  # written by `transferset report`
POS_VOCABULARY = "pos_vocabulary.json"  # the swap words' counts (the report's yield model)
DEAD_LETTER_DIR = "dead_letter"
DEAD_LETTER = f"{DEAD_LETTER_DIR}/dead_letter.jsonl"
# everything a set's folder may hold: the build replaces such a folder whole, and refuses
# one with anything else in it; cache-*.arrow are what datasets writes beside shards it maps
SET_FILES = (STATE, DATASET_INFO, MANIFEST, CARD, REPORT, POS_VOCABULARY)
SET_PATTERNS = (*DATA_GLOBS, "cache-*.arrow", "*.png", ".staging-*")
SET_FOLDERS = (DEAD_LETTER_DIR,)


def shard_name(index: int, num_shards: int, shard_format: str = "arrow") -> str:
    return f"data-{index:05d}-of-{num_shards:05d}.{shard_format}"


@dataclass(frozen=True)
class Counts:
    """Sources and rows through the stages; ``read == originals_written + dead_lettered``."""

    read: int = 0  # source rows read
    dead_lettered: int = 0  # source rows refused (dead_letter/)
    duplicate_ids: int = 0  # of those, for an id an earlier row had
    tagged: int = 0  # source rows tagged (= originals_written)
    drawn: int = 0  # samples drawn (sources x n_iter)
    sampled: int = 0  # samples kept within their source
    dropped_in_source: int = 0  # drawn - sampled
    duplicates_dropped: int = 0  # rows whose text another row has
    written: int = 0  # rows in the shards
    originals_written: int = 0  # of those, source rows
    samples_written: int = 0  # of those, samples


@dataclass
class Manifest:
    """``manifest.json``: how a set was made and what it holds (the dataset card's source)."""

    task: str
    label_names: list[str] | None
    regression: bool
    input: list[str]
    format: str
    augment: dict  # AugmentConfig.to_dict()
    seed: int
    spacy_model: str
    counts: Counts
    limit: int | None = None
    num_shards: int = 0
    shard_format: str = "arrow"
    scale: dict = field(default_factory=dict)  # ScaleConfig's fields
    max_rows_held: dict = field(default_factory=dict)
    teacher: dict | None = None  # path, weights, cache key, id2label, what the workers ran ...
    dead_letter_reasons: dict = field(default_factory=dict)
    stage_busy_seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    shards: dict = field(default_factory=dict)  # shard file -> sha256
    versions: dict = field(default_factory=dict)
    beam_options: list[str] = field(default_factory=list)
    command: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        counts = {k: v for k, v in d.get("counts", {}).items() if k in Counts.__annotations__}
        return cls(**(values | {"counts": Counts(**counts)}))


def read_manifest(folder: str) -> Manifest | None:
    """A set's manifest (``None`` for a folder without one, e.g. ``save_to_disk``'s)."""
    path = posixpath.join(folder, MANIFEST)
    if "://" in folder:
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path) as f:
            return Manifest.from_dict(json.loads(f.read().decode("utf-8")))
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return Manifest.from_dict(json.load(f))


def is_transfer_set(folder: str) -> bool:
    """A folder ``open_set`` opens: Arrow shards with ``state.json``, or Parquet shards with
    a manifest."""
    if not os.path.isdir(folder):
        return False
    if os.path.exists(os.path.join(folder, STATE)):
        return True
    found = read_manifest(folder)
    return found is not None and found.shard_format == "parquet"


def open_set(folder: str):
    """A local set as a ``datasets.Dataset``, whichever its shard format: Arrow shards are
    memory-mapped in place (``load_from_disk``), Parquet shards are read by ``datasets``'
    Parquet loader (its Features, ClassLabel names included, come from the files)."""
    import glob

    import datasets

    if os.path.exists(os.path.join(folder, STATE)):
        return datasets.load_from_disk(folder)
    files = sorted(glob.glob(os.path.join(glob.escape(folder), data_glob("parquet"))))
    return datasets.load_dataset("parquet", data_files=files, split="train")


def _write_json(path: str, obj) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as f:
        f.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_set_files(folder: str, manifest: Manifest, features) -> None:
    """The JSON files and the card beside the shards ``manifest.shards`` names: for Arrow
    shards, ``dataset_info.json`` and ``state.json`` as ``Dataset.save_to_disk`` writes them,
    so that ``datasets.load_from_disk(folder)`` opens the set."""
    from apache_beam.io.filesystems import FileSystems

    from pipelines import card

    shards = sorted(manifest.shards)
    fingerprint = hashlib.sha256("".join(manifest.shards[s] for s in shards).encode())
    _write_json(
        posixpath.join(folder, DATASET_INFO),
        {
            "citation": "",
            "description": f"transferset transfer set for {manifest.task}",
            "features": features.to_dict(),
            "homepage": "",
            "license": "",
        },
    )
    if manifest.shard_format == "arrow":  # load_from_disk reads Arrow streams only
        _write_json(
            posixpath.join(folder, STATE),
            {
                "_data_files": [{"filename": s} for s in shards],
                "_fingerprint": fingerprint.hexdigest()[:16],
                "_format_columns": None,
                "_format_kwargs": {},
                "_format_type": None,
                "_output_all_columns": False,
                "_split": None,
            },
        )
    _write_json(posixpath.join(folder, MANIFEST), manifest.to_dict())
    with FileSystems.create(posixpath.join(folder, CARD)) as f:
        f.write(card.render(manifest.to_dict()).encode("utf-8"))
