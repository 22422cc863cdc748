"""Data moves between the build's stages as files; the pipeline carries only their names.

Beam's in-process runner keeps every element that crosses a shuffle or a side-input barrier in
memory, and a distributed runner ships it through its shuffle service. A transfer set is tens of
millions of rows, so a stage writes what it produces to a file in the build's work folder and
emits a small handle (the path, a key, a row count). The next stage reads the files it is given,
never a glob, so files left by a retried bundle are ignored and removed with the work folder.

Memory per worker is then set by the settings (rows per spill, per bucket, per shard), not by
the data. Generic batches are pickled; rows are Arrow IPC files (memory-mapped on read).
"""

from __future__ import annotations

import pickle
import posixpath
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows


class Spilled(NamedTuple):
    """A file of rows (or of a packed batch) and how many rows it holds."""

    path: str
    rows: int


def match(pattern: str) -> list[str]:
    """The paths a glob matches, sorted; none where the folder is missing (some file systems
    raise for that)."""
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001
        return []
    return sorted(m.path for m in found)


def emit_later(value):
    """A value yielded from ``finish_bundle`` (which must name its window)."""
    return GlobalWindows.windowed_value(value)


def new_path(folder: str, prefix: str, suffix: str) -> str:
    return posixpath.join(folder, f"{prefix}-{uuid.uuid4().hex}{suffix}")


def write_pickle(folder: str, prefix: str, batch: list) -> Spilled:
    path = new_path(folder, prefix, ".pkl")
    with FileSystems.create(path) as f:
        f.write(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    return Spilled(path, len(batch))


def read_pickle(path: str) -> list:
    with FileSystems.open(path) as f:
        return pickle.loads(f.read())


def write_table(path: str, table: pa.Table, max_chunksize: int | None = None) -> None:
    """An Arrow IPC stream file (the format ``datasets`` memory-maps)."""
    with FileSystems.create(path) as f:
        with pa.ipc.new_stream(f, table.schema) as writer:
            writer.write_table(table, max_chunksize=max_chunksize)


def spill_table(folder: str, prefix: str, table: pa.Table) -> Spilled:
    path = new_path(folder, prefix, ".arrow")
    write_table(path, table)
    return Spilled(path, table.num_rows)


def read_table(path: str) -> pa.Table:
    """One IPC stream file; memory-mapped when it is local, read whole otherwise."""
    if "://" not in path:
        return pa.ipc.open_stream(pa.memory_map(path)).read_all()
    with FileSystems.open(path) as f:
        return pa.ipc.open_stream(f.read()).read_all()


def read_tables(paths: list[str], schema: pa.Schema) -> pa.Table:
    tables = [read_table(p) for p in sorted(paths)]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


class KeyedSpill:
    """Per-key buffers of row tables, flushed to files once ``limit`` rows are held in all.

    ``add`` and ``flush`` yield ``(key, Spilled)`` handles for the files they wrote.
    """

    def __init__(self, folder: str, prefix: str, limit: int):
        self.folder, self.prefix, self.limit = folder, prefix, limit
        self.parts: dict[int, list[pa.Table]] = {}
        self.held = 0

    def add(self, key: int, table: pa.Table) -> Iterator[tuple[int, Spilled]]:
        if table.num_rows == 0:
            return
        self.parts.setdefault(key, []).append(table)
        self.held += table.num_rows
        if self.held >= self.limit:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[int, Spilled]]:
        parts, self.parts, self.held = self.parts, {}, 0
        for key in sorted(parts):
            table = pa.concat_tables(parts[key])
            yield key, spill_table(self.folder, f"{self.prefix}{key:05d}", table)
