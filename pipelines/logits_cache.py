"""Teacher logits cached by text, as sorted Arrow files that are memory-mapped, never loaded.

A cache folder is named by a fingerprint of everything that changes the logits (weights,
tokenizer files, model config without its label names, max length, dtype) and holds
``part-*.arrow`` files. Each part is one finished unit of teacher work, written under a temporary
name and renamed, so a killed build loses at most the unit in flight. A part holds sorted 16-byte
keys (blake2b of the length-prefixed text pair) and the *raw* logits in the teacher's own output
order; the task's label order is applied after lookup, so a relabelled teacher or another task
reuses them correctly. Every part records the fingerprint's fields in its schema metadata, and a
part whose fields differ from the folder's is refused.

Lookup is a binary search per part over memory-mapped key arrays: a worker's memory does not grow
with the cache. ``compact`` merges many small parts into one, streaming by the keys' first byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import uuid

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.exchange import match

logger = logging.getLogger(__name__)
META = b"transferset.logits_cache"
KEY_BYTES = 16
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "added_tokens.json",
)


def _field(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(8, "little") + data


def cache_key(text_a: str, text_b: str | None) -> bytes:
    """16 bytes naming a text pair; fields are length-prefixed, so no two pairs share a key."""
    data = _field(text_a) + (b"\x00" if text_b is None else b"\x01" + _field(text_b))
    return hashlib.blake2b(data, digest_size=KEY_BYTES, person=b"ts-logits").digest()


def _sha256_files(paths: list[str]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(_field(os.path.basename(path)))
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def cache_fields(
    teacher_path: str, weights_sha256: str, max_length: int, dtype: str
) -> dict[str, str | int]:
    """Everything that changes a teacher's raw logits for a given text pair."""
    tokenizer = [
        os.path.join(teacher_path, n)
        for n in _TOKENIZER_FILES
        if os.path.exists(os.path.join(teacher_path, n))
    ]
    with open(os.path.join(teacher_path, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    for name in ("id2label", "label2id", "_name_or_path", "transformers_version"):
        config.pop(name, None)  # label names only name the outputs; the cache keeps raw order
    return {
        "weights_sha256": weights_sha256,
        "tokenizer_sha256": _sha256_files(tokenizer),
        "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
        "max_length": int(max_length),
        "dtype": dtype,
    }


def cache_folder(root: str, fields: dict) -> str:
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return posixpath.join(root, f"teacher-{digest[:20]}")


def _schema(width: int, fields: dict) -> pa.Schema:
    return pa.schema(
        [("key", pa.binary(KEY_BYTES)), ("logits", pa.list_(pa.float32(), width))],
        metadata={META: json.dumps(fields, sort_keys=True).encode()},
    )


def parts(folder: str) -> list[str]:
    """The finished parts of a cache folder (``.tmp-*`` files of a write in flight are not)."""
    return match(posixpath.join(folder, "part-*.arrow"))


def _open_part(path: str) -> pa.ipc.RecordBatchFileReader:
    if "://" in path:  # object stores cannot be mapped: read the part (one unit of work)
        with FileSystems.open(path) as f:
            return pa.ipc.open_file(pa.py_buffer(f.read()))
    return pa.ipc.open_file(pa.memory_map(path))


class _Run:
    """One record batch of a part: sorted keys (``S16``) and raw logits, views over the file."""

    def __init__(self, batch: pa.RecordBatch):
        keys, logits = batch.column(0), batch.column(1)
        width = logits.type.list_size
        self.keys = np.frombuffer(
            keys.buffers()[1], dtype=f"S{KEY_BYTES}", count=len(keys), offset=keys.offset * 16
        )
        values = logits.values.to_numpy(zero_copy_only=True)
        self.logits = values[logits.offset * width : (logits.offset + len(logits)) * width].reshape(
            len(logits), width
        )
        self.batch = batch  # keeps the mapping alive


def _runs(path: str, fields: dict) -> list[_Run]:
    """A part's sorted runs (one per record batch), after checking it belongs to ``fields``."""
    reader = _open_part(path)
    meta = (reader.schema.metadata or {}).get(META)
    got = json.loads(meta) if meta else None
    if got != fields:
        raise ValueError(
            f"logits cache part {path} was written for {got}, not for this teacher "
            f"({fields}); it does not belong in this folder: remove it"
        )
    runs = [_Run(reader.get_batch(i)) for i in range(reader.num_record_batches)]
    return [r for r in runs if len(r.keys)]


class LogitsCache:
    """A read-only view of every part of one cache folder (empty when there is none)."""

    def __init__(self, folder: str | None, fields: dict | None):
        self.folder, self.fields = folder, fields
        self.runs = [r for p in parts(folder) for r in _runs(p, fields)] if folder else []

    def __len__(self) -> int:
        return sum(len(r.keys) for r in self.runs)

    def lookup(self, keys: list[bytes], width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(found, logits)``: a bool mask over ``keys`` and raw logits where found."""
        query = np.array(keys, dtype=f"S{KEY_BYTES}")
        found = np.zeros(len(keys), dtype=bool)
        out = np.zeros((len(keys), width), dtype=np.float32)
        for run in self.runs:
            pos = np.searchsorted(run.keys, query)
            pos[pos == len(run.keys)] = 0
            hit = (run.keys[pos] == query) & ~found
            if hit.any():
                out[hit] = run.logits[pos[hit]]
                found |= hit
        return found, out


def write_part(folder: str, keys: list[bytes], logits: np.ndarray, fields: dict) -> str | None:
    """Atomically add one part (``keys`` unique) with raw ``(n, width)`` logits; its path."""
    if not keys:
        return None
    packed = np.array(keys, dtype=f"S{KEY_BYTES}")
    order = np.argsort(packed, kind="stable")
    width = logits.shape[1]
    table = _part_table(packed[order], logits[order], _schema(width, fields))
    name = f"part-{uuid.uuid4().hex}.arrow"
    tmp = posixpath.join(folder, f".tmp-{name}")
    _write_file(tmp, table)
    path = posixpath.join(folder, name)
    FileSystems.rename([tmp], [path])
    return path


def _part_table(keys: np.ndarray, logits: np.ndarray, schema: pa.Schema) -> pa.Table:
    """Sorted ``S16`` keys and their ``(n, width)`` logits as a part's table."""
    # keys go in as raw bytes: ``tolist`` would strip their trailing zero bytes
    data = pa.py_buffer(np.ascontiguousarray(keys).tobytes())
    key_array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(KEY_BYTES), len(keys), [None, data])
    values = pa.array(np.ascontiguousarray(logits, dtype=np.float32).reshape(-1))
    width = schema.field("logits").type.list_size
    return pa.table([key_array, pa.FixedSizeListArray.from_arrays(values, width)], schema=schema)


def _write_file(path: str, table: pa.Table) -> None:
    with FileSystems.create(path) as f:
        with pa.ipc.new_file(f, table.schema) as writer:
            writer.write_table(table)


def ensure_folder(folder: str) -> None:
    try:
        exists = FileSystems.exists(folder)
    except Exception:  # noqa: BLE001
        exists = False
    if not exists:
        FileSystems.mkdirs(folder)


def compact(folder: str, fields: dict, min_parts: int = 16) -> int:
    """Merge the folder's parts into one once there are ``min_parts`` or more; parts merged.

    Keys are uniform hashes, so the merge walks them by first byte: memory holds 1/256 of the
    cache at a time. The new part is renamed into place before the old ones go, so a kill at
    any point leaves every logit readable (a key in two parts is harmless: same value).
    """
    paths = parts(folder)
    if len(paths) < min_parts:
        return 0
    runs = [r for p in paths for r in _runs(p, fields)]
    if not runs:
        return 0
    width = runs[0].logits.shape[1]
    schema = _schema(width, fields)
    firsts = np.array([bytes([b]) for b in range(256)], dtype=f"S{KEY_BYTES}")
    bounds = [np.append(np.searchsorted(r.keys, firsts), len(r.keys)) for r in runs]
    name = f"part-{uuid.uuid4().hex}.arrow"
    tmp = posixpath.join(folder, f".tmp-{name}")
    with FileSystems.create(tmp) as f, pa.ipc.new_file(f, schema) as writer:
        for b in range(256):
            pieces = list(zip(runs, bounds, strict=True))
            keys = np.concatenate([p.keys[s[b] : s[b + 1]] for p, s in pieces])
            if not len(keys):
                continue
            logits = np.concatenate([p.logits[s[b] : s[b + 1]] for p, s in pieces])
            keys, first = np.unique(keys, return_index=True)
            logits = logits[first]
            writer.write_table(_part_table(keys, logits, schema))
    del runs
    FileSystems.rename([tmp], [posixpath.join(folder, name)])
    FileSystems.delete(paths)
    logger.info("logits cache %s: merged %d parts into %s", folder, len(paths), name)
    return len(paths)
