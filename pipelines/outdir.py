"""The output folder: a build writes a sibling staging folder and swaps it in when complete.

``<out>.staging-<uuid>/`` holds the new set (its shards, dead letters, JSON files) and, inside
``.work/``, the files that move between stages. A sibling lock file ``<out>.staging-<uuid>.lock``
is held (``flock``) for the life of the build, so the next build can tell the staging folders of
killed runs (lock free) from a live one, and remove them.

Commit: on a local disk the staging folder and ``<out>`` are exchanged in one atomic
``renameat2(RENAME_EXCHANGE)``: at every moment ``<out>`` holds the whole old set or the whole
new one, with its JSON files. Object stores have no atomic rename; there the old set's files are
deleted and the new ones renamed in (the README says so).
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import logging
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from distill.checkpoints import discard, hold_lock, recover_swap, replace_folder
from pipelines.exchange import match
from pipelines.transfer_set import (
    DATA_GLOBS,
    DEAD_LETTER_DIR,
    MANIFEST,
    SET_FILES,
    SET_FOLDERS,
    SET_PATTERNS,
)

logger = logging.getLogger(__name__)


def is_local(path: str) -> bool:
    return "://" not in path


def state(out: str) -> str:
    """What ``out`` is now, as a token that changes whenever a build commits there (the commit
    swaps the folder, so its inode changes) or anyone adds or removes a name in it."""
    if not is_local(out):
        return ",".join(match(posixpath.join(out, "*")))
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return "absent"
    names = sorted(os.listdir(out)) if os.path.isdir(out) else []
    return f"{st.st_ino}:{st.st_dev}:{names}"


def check(out: str, overwrite: bool) -> str:
    """Refuse an ``out`` that holds a set (without ``overwrite``) or anything but a set;
    returns ``state(out)``, which the commit checks again."""
    seen = state(out)
    if not is_local(out):
        if any(match(posixpath.join(out, g)) for g in DATA_GLOBS) and not overwrite:
            raise FileExistsError(
                f"--out {out!r} already holds a transfer set; pass --overwrite to replace it"
            )
        return seen
    if not os.path.exists(out):
        return seen
    if not os.path.isdir(out):
        raise FileExistsError(f"--out {out!r} is a file, not a folder")
    names = os.listdir(out)
    foreign = [
        n
        for n in names
        if n not in SET_FILES
        and n not in SET_FOLDERS
        and not any(fnmatch.fnmatch(n, p) for p in SET_PATTERNS)
    ]
    if foreign:
        raise FileExistsError(
            f"--out {out!r} holds files that are not a transfer set's ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); the build replaces the whole folder, "
            "so choose an empty or new one"
        )
    shards = [n for n in names if any(fnmatch.fnmatch(n, g) for g in DATA_GLOBS)]
    if (shards or MANIFEST in names) and not overwrite:
        raise FileExistsError(
            f"--out {out!r} already holds a transfer set ({len(shards)} shards); "
            "pass --overwrite to replace it, or choose another folder"
        )
    return seen


class Staging:
    """A staging folder of one build, locked while the build lives."""

    def __init__(self, out: str, seen: str | None = None, overwrite: bool = False):
        self.out = out.rstrip("/") or out
        self.seen, self.overwrite = seen, overwrite  # ``check``'s view of ``out``
        self.path = f"{self.out}.staging-{uuid.uuid4().hex[:12]}"
        self.lock = f"{self.path}.lock"
        self.work = posixpath.join(self.path, ".work")
        self._fd = None

    def __enter__(self) -> Staging:
        if is_local(self.out):
            os.makedirs(os.path.dirname(os.path.abspath(self.out)), exist_ok=True)
            self._fd = hold_lock(self.lock, f"the staging folder {self.path}")
            removed = clean_stale(self.out)
            if removed:
                logger.info(
                    "removed %d staging folders of killed builds: %s", len(removed), removed
                )
        FileSystems.mkdirs(self.work)
        FileSystems.mkdirs(posixpath.join(self.path, DEAD_LETTER_DIR))
        return self

    def __exit__(self, *exc) -> None:
        if FileSystems.exists(self.path):
            try:
                _remove(self.path)
            except Exception:  # noqa: BLE001 - best effort; a later build cleans it up
                logger.warning("could not remove the staging folder %s", self.path)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.lock)
            os.close(self._fd)
            self._fd = None

    def committer(self) -> Committer:
        """What commits this staged set, as a small value a worker can run."""
        return Committer(self.path, self.out, self.seen, self.overwrite)

    def commit(self) -> None:
        self.committer()()


@dataclass(frozen=True)
class Committer:
    """Puts a staged set at ``out``: whole, in one step where the file system allows.

    Under a lock on ``out``'s parent folder (commits there take turns), ``out`` must still be
    what ``check`` saw (``seen``): a set another build committed meanwhile is never thrown away
    without ``overwrite``. The work folder goes first; the old set last."""

    path: str
    out: str
    seen: str | None
    overwrite: bool

    def __call__(self) -> None:
        _remove(posixpath.join(self.path, ".work"))
        if not is_local(self.out):
            self._recheck()
            _commit_remote(self.path, self.out)
            return
        with _commits_lock(self.out):
            self._recheck()
            old = replace_folder(self.path, self.out)
        discard(old)  # the old set, after the swap
        with contextlib.suppress(OSError):  # its build is done; a held lock on it stays valid
            os.unlink(f"{self.path}.lock")

    def _recheck(self) -> None:
        if self.seen is None or self.overwrite or state(self.out) == self.seen:
            return
        raise FileExistsError(
            f"--out {self.out!r} was written by another build while this one ran; this build's "
            "set was not committed (its teacher logits are cached: rerun with --overwrite to "
            "replace the other set, or choose another folder)"
        )


@contextlib.contextmanager
def _commits_lock(out: str):
    """The lock on ``out``'s parent folder that commits (and the repair of a cut one) take in
    turns."""
    import fcntl

    fd = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _unless_held(lock: str):
    """Yield whether no live build holds ``lock`` (no such file, or its ``flock`` is free); a
    free lock file is removed on leaving the block, while this process still holds it."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        yield True
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        yield False  # a live build
        return
    try:
        yield True
        with contextlib.suppress(OSError):
            os.unlink(lock)
    finally:
        os.close(fd)


def clean_stale(out: str) -> list[str]:
    """Remove staging folders of ``out`` whose build is gone (lock free or no lock file). A
    build killed inside a swap without RENAME_EXCHANGE left ``out`` missing and the old set at
    ``<staging>.old``: that folder is put back at ``out`` instead."""
    with _commits_lock(out):  # a commit in its two-rename window holds it: ``out`` is not lost
        recover_swap(out, ".staging-*")
    removed = []
    for folder in glob.glob(glob.escape(out) + ".staging-*"):
        if folder.endswith(".lock"):
            continue
        with _unless_held(folder.removesuffix(".old") + ".lock") as free:  # ``.old``: its build's
            if free:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    for lock in glob.glob(glob.escape(out) + ".staging-*.lock"):
        if not os.path.exists(lock[: -len(".lock")]):
            with _unless_held(lock):
                pass  # a free lock whose folder is gone: removed on leaving
    if os.path.isdir(out):  # staging folders inside ``out`` (earlier versions of the build)
        for folder in glob.glob(os.path.join(glob.escape(out), ".staging-*")):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _remove(path: str) -> None:
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif FileSystems.exists(path):
        FileSystems.delete([path])


def _commit_remote(staging: str, out: str) -> None:
    old = [p for g in DATA_GLOBS for p in match(posixpath.join(out, g))]
    old += match(posixpath.join(out, DEAD_LETTER_DIR, "*"))
    old += [p for p in (posixpath.join(out, n) for n in SET_FILES) if match(p)]
    if old:
        FileSystems.delete(old)
    src = match(posixpath.join(staging, "*")) + match(posixpath.join(staging, DEAD_LETTER_DIR, "*"))
    src = [p for p in src if not p.rstrip("/").endswith(("/.work", f"/{DEAD_LETTER_DIR}"))]
    dst = [posixpath.join(out, posixpath.relpath(p, staging)) for p in src]
    FileSystems.mkdirs(posixpath.join(out, DEAD_LETTER_DIR))
    FileSystems.rename(src, dst)
    FileSystems.delete([staging])
