"""Upkeep of a logits cache folder: merging its many small parts into one, and removing the
temporary files of killed writers. Run after a build's set is in place (``finish``)."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import time
import uuid

import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipelines.logits_cache import (
    KEY_BYTES,
    SWEEP_AGE_S,
    BadPart,
    _PartWriter,
    _runs,
    _schema,
    parts,
    quarantine,
)

logger = logging.getLogger(__name__)


def sweep_temporary(folder: str, older_than_s: float = SWEEP_AGE_S) -> list[str]:
    """Remove ``.tmp-*`` files that killed writers left (a live write takes seconds, so a file
    untouched for ``older_than_s`` is no one's); the paths removed."""
    try:
        found = FileSystems.match([posixpath.join(folder, ".tmp-*")])[0].metadata_list
    except Exception:  # noqa: BLE001 - no folder
        return []
    now = time.time()
    old = [m.path for m in found if now - (m.last_updated_in_seconds or now) >= older_than_s]
    removed = []
    for path in old:
        with contextlib.suppress(Exception):
            FileSystems.delete([path])
            removed.append(path)
    if removed:
        logger.info("logits cache %s: removed %d files of killed writers", folder, len(removed))
    return removed


def compact(folder: str, fields: dict, min_parts: int = 16) -> int:
    """Merge the folder's parts into one once there are ``min_parts`` or more; parts merged.

    Keys are uniform hashes, so the merge walks them by first byte: memory holds 1/256 of the
    cache at a time. The new part is renamed into place before the old ones go, so a kill at
    any point leaves every logit readable (a key in two parts is harmless: same value), and a
    reader that lists the folder meanwhile finds the merged part when an old one is gone.
    Bad parts are moved aside, never merged. A concurrent compaction that deleted some of the
    parts first makes this one stop (0): its work is already done.
    """
    sweep_temporary(folder)
    paths = parts(folder)
    if len(paths) < min_parts:
        return 0
    runs, merged = [], []
    for path in paths:
        try:
            runs += _runs(path, fields)[0]
            merged.append(path)
        except BadPart as exc:
            quarantine(path, str(exc))
        except FileNotFoundError:
            logger.info("logits cache %s: another build compacted it first", folder)
            return 0
    if not runs:
        return 0
    width = runs[0].logits.shape[1]
    schema = _schema(width, fields)
    firsts = np.array([bytes([b]) for b in range(256)], dtype=f"S{KEY_BYTES}")
    bounds = [np.append(np.searchsorted(r.keys, firsts), len(r.keys)) for r in runs]
    name = f"part-{uuid.uuid4().hex}.arrow"
    tmp = posixpath.join(folder, f".tmp-{name}")
    with _PartWriter(tmp, posixpath.join(folder, name), schema) as writer:
        for b in range(256):
            pieces = list(zip(runs, bounds, strict=True))
            keys = np.concatenate([p.keys[s[b] : s[b + 1]] for p, s in pieces])
            if not len(keys):
                continue
            logits = np.concatenate([p.logits[s[b] : s[b + 1]] for p, s in pieces])
            keys, first = np.unique(keys, return_index=True)
            writer.write(keys, logits[first])
    del runs
    for path in merged:  # one at a time: a part another compaction removed is no error
        with contextlib.suppress(Exception):
            FileSystems.delete([path])
    logger.info("logits cache %s: merged %d parts into %s", folder, len(merged), name)
    return len(merged)
