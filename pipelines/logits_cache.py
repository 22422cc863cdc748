"""Teacher logits cached by text, as sorted Arrow files that are memory-mapped, never loaded.

A cache folder is named by a fingerprint of everything that changes the logits (weights,
tokenizer files, model config without its label names, max length, dtype) and holds
``part-*.arrow`` files. Each part is one finished unit of teacher work, written under a temporary
name, fsynced and renamed, so a killed build loses at most the unit in flight. Each record batch
carries a checksum of its keys and logits; a part that is truncated, garbage, foreign or fails
its checksum is moved to ``corrupt/`` with a warning and its rows are scored again. A part
holds sorted 16-byte keys (blake2b of the length-prefixed text pair) and the *raw* logits in
the teacher's own output order; the task's label order is applied after lookup, so a relabelled
teacher or another task reuses them correctly. Every part records the fingerprint's fields in
its schema metadata; a part whose fields differ from the folder's is moved aside too.

Lookup is a binary search per part over memory-mapped key arrays: a worker's memory does not grow
with the cache. ``compact`` merges many small parts into one, streaming by the keys' first byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import uuid

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from distill.checkpoints import fsync_path
from pipelines.exchange import match

logger = logging.getLogger(__name__)
META = b"transferset.logits_cache"
CHECKSUM = b"transferset.checksum"  # per record batch: blake2b of its keys and logits
CORRUPT = "corrupt"  # where bad parts are moved
SWEEP_AGE_S = 3600.0  # a .tmp-* file untouched this long belongs to a killed writer
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


def cache_fields(teacher_path: str, weights_sha256: str, max_length: int) -> dict[str, str | int]:
    """What the driver knows of a teacher's raw logits for a text pair: its files and max
    length. The worker adds what it actually ran with (``runtime_fields``)."""
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
    }


def runtime_fields(fields: dict, dtype: str, device: str) -> dict:
    """``fields`` plus the dtype and device kind (``cpu``, ``cuda``) a worker really ran: a
    CPU launcher cannot know them for GPU workers, and bf16 logits are not float32 logits."""
    return fields | {"dtype": dtype, "device": device}


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


def checksum(keys: np.ndarray, logits: np.ndarray) -> str:
    """blake2b of a run's key bytes and float32 logit bytes (what a part's batch stores)."""
    h = hashlib.blake2b(digest_size=16, person=b"ts-part")
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(logits, dtype=np.float32).tobytes())
    return h.hexdigest()


class BadPart(Exception):
    """A part that cannot be trusted: truncated, garbage, foreign or failing its checksum."""


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


def _runs(path: str, fields: dict) -> tuple[list[_Run], bool]:
    """A part's sorted runs (one per record batch), each checked against its checksum, and
    whether the part had checksums at all (parts written before they existed have none).
    ``BadPart`` when anything is wrong; ``FileNotFoundError`` when it is gone (compacted)."""
    try:
        reader = _open_part(path)
        meta = (reader.schema.metadata or {}).get(META)
        got = json.loads(meta) if meta else None
        if got != fields:
            differ = sorted(
                k for k in set(fields) | set(got or {}) if (got or {}).get(k) != fields.get(k)
            )
            raise BadPart(f"it was written for another teacher or runtime (differs in {differ})")
        runs, verified = [], True
        for i in range(reader.num_record_batches):
            batch, custom = reader.get_batch_with_custom_metadata(i)
            if batch.num_columns != 2 or batch.column(0).null_count or batch.column(1).null_count:
                raise BadPart(f"record batch {i} is malformed")
            run = _Run(batch)
            want = (custom or {}).get(CHECKSUM)
            if want is None:
                verified = False
            elif checksum(run.keys, run.logits) != want.decode():
                raise BadPart(f"record batch {i} fails its checksum")
            if len(run.keys):
                runs.append(run)
        return runs, verified
    except FileNotFoundError:
        raise
    except BadPart:
        raise
    except (pa.ArrowException, OSError, ValueError, IndexError, json.JSONDecodeError) as exc:
        raise BadPart(f"it cannot be read ({type(exc).__name__}: {exc})") from exc


def quarantine(path: str, reason: str) -> str | None:
    """Move a bad part to ``<folder>/corrupt/`` so nothing reads it again; its rows are scored
    again. Returns where it went (``None`` where the folder is read-only: then it is skipped)."""
    folder, name = posixpath.split(path)
    dest = posixpath.join(folder, CORRUPT, f"{name}.{uuid.uuid4().hex[:8]}")
    try:
        FileSystems.mkdirs(posixpath.join(folder, CORRUPT))
    except Exception:  # noqa: BLE001 - it exists, or the folder is read-only
        pass
    try:
        FileSystems.rename([path], [dest])
    except Exception:  # noqa: BLE001 - read-only, or another worker moved it first
        dest = None
    logger.warning(
        "logits cache part %s is bad (%s): %s; its rows will be scored again",
        path,
        reason,
        f"moved to {dest}" if dest else "skipped (could not move it)",
    )
    return dest


class LogitsCache:
    """A read-only view of every good part of one cache folder (empty when there is none).

    Parts are opened (memory-mapped, or read from an object store) when the view is made, so
    a compaction that deletes them later takes nothing from it; a part that vanishes between
    listing and opening was just compacted, so the folder is listed again.
    """

    def __init__(self, folder: str | None, fields: dict | None):
        self.folder, self.fields = folder, fields
        self.runs: list[_Run] = []
        self.bad: list[str] = []  # parts found bad (and moved aside) while opening
        self.unverified = 0  # parts without checksums (written by an older version)
        if not folder:
            return
        for _ in range(5):
            try:
                self._open_all()
                break
            except FileNotFoundError:
                self.runs, self.unverified = [], 0
        if self.unverified:
            logger.warning(
                "logits cache %s: %d parts predate checksums and were not verified",
                folder,
                self.unverified,
            )

    def _open_all(self) -> None:
        for path in parts(self.folder):
            try:
                runs, verified = _runs(path, self.fields)
            except BadPart as exc:
                quarantine(path, str(exc))
                self.bad.append(path)
                continue
            self.runs += runs
            self.unverified += not verified

    def __len__(self) -> int:
        return sum(len(r.keys) for r in self.runs)

    def lookup(self, keys: list[bytes], width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(found, logits)``: a bool mask over ``keys`` and raw logits where found."""
        query = np.array(keys, dtype=f"S{KEY_BYTES}")
        found = np.zeros(len(keys), dtype=bool)
        out = np.zeros((len(keys), width), dtype=np.float32)
        for run in self.runs:
            if run.logits.shape[1] != width:
                continue  # another head width cannot be this teacher's
            pos = np.searchsorted(run.keys, query)
            pos[pos == len(run.keys)] = 0
            hit = (run.keys[pos] == query) & ~found
            if hit.any():
                out[hit] = run.logits[pos[hit]]
                found |= hit
        return found, out


def write_part(folder: str, keys: list[bytes], logits: np.ndarray, fields: dict) -> str | None:
    """Atomically and durably add one part (``keys`` unique) with raw ``(n, width)`` logits;
    its path. ``OSError`` (read-only, disk full) leaves no file behind."""
    if not keys:
        return None
    packed = np.array(keys, dtype=f"S{KEY_BYTES}")
    order = np.argsort(packed, kind="stable")
    width = logits.shape[1]
    schema = _schema(width, fields)
    name = f"part-{uuid.uuid4().hex}.arrow"
    tmp = posixpath.join(folder, f".tmp-{name}")
    path = posixpath.join(folder, name)
    with _PartWriter(tmp, path, schema) as writer:
        writer.write(packed[order], logits[order])
    return path


class _PartWriter:
    """Writes record batches, each with its checksum, to ``tmp``; on a clean exit fsyncs it,
    renames it to ``path`` and fsyncs the folder (local disks; object stores are durable on
    close). On any error the temporary file is removed."""

    def __init__(self, tmp: str, path: str, schema: pa.Schema):
        self.tmp, self.path, self.schema = tmp, path, schema
        self.local = "://" not in tmp

    def __enter__(self) -> _PartWriter:
        self.file = open(self.tmp, "wb") if self.local else FileSystems.create(self.tmp)
        try:
            self.writer = pa.ipc.new_file(self.file, self.schema)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, keys: np.ndarray, logits: np.ndarray) -> None:
        batch = _part_batch(keys, logits, self.schema)
        self.writer.write_batch(batch, custom_metadata={CHECKSUM: checksum(keys, logits)})

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            self.writer.close()
            if self.local:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if self.local:
                os.replace(self.tmp, self.path)
                fsync_path(posixpath.dirname(self.path) or ".")
            else:
                FileSystems.rename([self.tmp], [self.path])
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        with contextlib.suppress(Exception):
            FileSystems.delete([self.tmp])


def _part_batch(keys: np.ndarray, logits: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    """Sorted ``S16`` keys and their ``(n, width)`` logits as one record batch of a part."""
    # keys go in as raw bytes: ``tolist`` would strip their trailing zero bytes
    data = pa.py_buffer(np.ascontiguousarray(keys).tobytes())
    key_array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(KEY_BYTES), len(keys), [None, data])
    values = pa.array(np.ascontiguousarray(logits, dtype=np.float32).reshape(-1))
    width = schema.field("logits").type.list_size
    logit_array = pa.FixedSizeListArray.from_arrays(values, width)
    return pa.record_batch([key_array, logit_array], schema=schema)


def ensure_folder(folder: str) -> None:
    try:
        exists = FileSystems.exists(folder)
    except Exception:  # noqa: BLE001
        exists = False
    if not exists:
        FileSystems.mkdirs(folder)
