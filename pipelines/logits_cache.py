"""Teacher logits cached by text, as Arrow files (never a file per text).

A cache folder per (weights sha256, max length) holds ``part-*.arrow`` files with a 16-byte key
(blake2b of the text pair) and the logits. A run reads every part, scores only texts that are
not there, and adds one part with what it scored.
"""

from __future__ import annotations

import hashlib
import posixpath

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

SCHEMA = pa.schema([("key", pa.binary(16)), ("logits", pa.list_(pa.float32()))])


def cache_key(text_a: str, text_b: str | None) -> bytes:
    data = (text_a + "\x00" + (text_b if text_b is not None else "\x01")).encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).digest()


def cache_folder(root: str, weights_sha256: str, max_length: int) -> str:
    return posixpath.join(root, f"{weights_sha256[:16]}-len{max_length}")


class LogitsCache:
    """In-memory view of every part in one cache folder (empty when there is none)."""

    def __init__(self, keys: list[bytes], logits: np.ndarray):
        self.index = {k: i for i, k in enumerate(keys)}
        self.logits = logits  # (n, num_labels) float32

    def __len__(self) -> int:
        return len(self.index)

    def get(self, key: bytes) -> np.ndarray | None:
        i = self.index.get(key)
        return None if i is None else self.logits[i]

    @classmethod
    def load(cls, folder: str | None) -> LogitsCache:
        if not folder:
            return cls([], np.zeros((0, 0), dtype=np.float32))
        try:
            parts = sorted(
                m.path
                for m in FileSystems.match([posixpath.join(folder, "part-*.arrow")])[
                    0
                ].metadata_list
            )
        except Exception:  # noqa: BLE001 - no folder yet
            parts = []
        keys: list[bytes] = []
        blocks = []
        for path in parts:
            with FileSystems.open(path) as f:
                table = pa.ipc.open_stream(f.read()).read_all()
            keys += table.column("key").to_pylist()
            values = table.column("logits").combine_chunks()
            width = len(values[0]) if len(values) else 0
            blocks.append(values.flatten().to_numpy().reshape(len(values), width))
        logits = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
        return cls(keys, logits.astype(np.float32, copy=False))


def write_part(path: str, entries: list[tuple[bytes, tuple[float, ...]]]) -> int:
    """Write ``(key, logits)`` entries (sorted by key, duplicates once) as one part file."""
    unique = dict(sorted(entries))
    width = len(next(iter(unique.values()))) if unique else 0
    flat = np.asarray(list(unique.values()), dtype=np.float32).reshape(-1)
    offsets = np.arange(0, len(unique) * width + 1, width or 1, dtype=np.int32)[: len(unique) + 1]
    table = pa.table(
        [
            pa.array(list(unique), type=pa.binary(16)),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32())),
        ],
        schema=SCHEMA,
    )
    with FileSystems.create(path) as f:
        with pa.ipc.new_stream(f, SCHEMA) as writer:
            writer.write_table(table)
    return len(unique)
