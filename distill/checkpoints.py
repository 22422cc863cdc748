"""Local ``transformers`` checkpoints, loaded safely: safetensors, or a pickle ``.bin`` only
when the caller says it trusts it (unpickling can run arbitrary code); a tokenizer only when it
has its files and really knows words; and the one rule that maps a checkpoint's labels onto a
task's. Every command that loads a checkpoint (build, evaluate, finetune-teacher,
train-student --teacher, export) comes through here. And how a run saves one without ever
leaving a half-written folder: the resumable training state (``Checkpoint``) and the atomic
swap of a finished folder into place (``replace_folder``). Torch-free at import."""

from __future__ import annotations

import ctypes
import errno
import glob
import logging
import os
import re
import shutil
import sys

logger = logging.getLogger(__name__)
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# a tokenizer's vocabulary lives in one of these; without it transformers quietly builds an
# empty tokenizer that maps every word to [UNK]
TOKENIZER_VOCABULARIES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
PROBE = "the movie was good and the actors were great , but the story is not funny ."


def check_folder(path: str, role: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{role} {path!r}: no such folder (a local checkpoint is needed)")


def weights_file(path: str, allow_pickle: bool = False, role: str = "teacher") -> str:
    """The checkpoint's weights file; a pickle checkpoint is refused unless allowed."""
    check_folder(path, role)
    for name in WEIGHTS:
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    for name in PICKLES:
        if os.path.exists(os.path.join(path, name)):
            if allow_pickle:
                return os.path.join(path, name)
            raise ValueError(
                f"{role} {path!r} has only a pickle checkpoint ({name}); loading it can run "
                "arbitrary code. Convert it to safetensors, or pass --allow-pickle if you trust it"
            )
    raise FileNotFoundError(f"{role} {path!r}: no model.safetensors (or pytorch_model.bin)")


def load_classifier(path: str, *, allow_pickle: bool = False, role: str = "model", **kwargs):
    """``AutoModelForSequenceClassification.from_pretrained`` behind ``weights_file``'s check."""
    from transformers import AutoModelForSequenceClassification

    weights = weights_file(path, allow_pickle, role)
    return AutoModelForSequenceClassification.from_pretrained(
        path, use_safetensors=not weights.endswith(PICKLES), **kwargs
    )


def load_tokenizer(path: str, role: str = "model"):
    """``AutoTokenizer.from_pretrained(path)``, refused when its vocabulary files are missing
    or when it encodes a plain English probe sentence mostly as unknown tokens (a folder with
    config and weights but no tokenizer files gives such a tokenizer, and nonsense logits)."""
    from transformers import AutoTokenizer

    check_folder(path, role)
    if not any(os.path.exists(os.path.join(path, n)) for n in TOKENIZER_VOCABULARIES):
        raise FileNotFoundError(
            f"{role} {path!r} has no tokenizer files (none of "
            f"{', '.join(TOKENIZER_VOCABULARIES)}): copy them from the checkpoint it came from"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - a broken file, whatever the library raises
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"the tokenizer files of {role} {path!r} can't be read: {first}") from exc
    ids = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    unknown = sum(1 for i in ids if unk is not None and i == unk)
    if not ids or unknown * 2 >= len(ids):
        raise ValueError(
            f"the tokenizer of {role} {path!r} encodes an English probe sentence as {unknown} "
            f"unknown tokens of {len(ids)} (vocabulary of {len(tokenizer)}): its tokenizer "
            "files are wrong or incomplete"
        )
    return tokenizer


def label_order(
    id2label: dict[int, str],
    task_labels: tuple[str, ...] | list[str] | None,
    label_map: tuple[tuple[str, str], ...] = (),
    role: str = "teacher",
) -> list[int]:
    """``perm`` such that task logits = model logits[:, perm]; a clear error if impossible."""
    names = [id2label[i] for i in range(len(id2label))]
    if task_labels is None:  # regression
        if len(names) != 1:
            raise ValueError(f"a regression task needs a {role} with one output, it has {names}")
        return [0]
    task_labels = tuple(task_labels)
    if len(names) == 1 and len(task_labels) > 1:
        raise ValueError(
            f"the {role} has one output ({names[0]!r}: a regression model) but the task is a "
            f"classification task with labels {list(task_labels)}"
        )
    if label_map:
        mapping = dict(label_map)
        missing = [t for t in task_labels if mapping.get(t) not in names]
        if missing:
            raise ValueError(
                f"--label-map does not map task labels {missing} to {role} labels {names}"
            )
        return [names.index(mapping[t]) for t in task_labels]
    lower = [n.lower() for n in names]
    if sorted(lower) == sorted(t.lower() for t in task_labels):
        perm = [lower.index(t.lower()) for t in task_labels]
        if perm != list(range(len(perm))):
            logger.warning(
                "%s labels %s are in another order than the task's %s: reordering the logits",
                role,
                names,
                list(task_labels),
            )
        return perm
    if all(re.fullmatch(r"LABEL_\d+", n) for n in names) and len(names) == len(task_labels):
        logger.warning(
            "%s labels are generic %s: assuming they mean %s in that order "
            "(pass --label-map to say otherwise)",
            role,
            names,
            list(task_labels),
        )
        return list(range(len(names)))
    raise ValueError(
        f"{role} labels {names} do not match the task's labels {list(task_labels)}; pass "
        "--label-map TASK_LABEL=TEACHER_LABEL,... if they mean the same things"
    )


def apply_umask(folder: str) -> None:
    """Give the files a save wrote into ``folder`` the mode of any new file (0666 less the
    umask): safetensors writes through a private temporary file, mode 0600, so a model saved by
    one user could not be served by another."""
    mask = os.umask(0)
    os.umask(mask)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.chmod(path, 0o666 & ~mask)


def hash_table(h, table) -> None:
    """Feed an Arrow table to the hash ``h``: its schema, and each chunk's offset, length and
    buffers (a slice shares its parent's buffers, so the offset and length tell slices apart)."""
    h.update(str(table.schema).encode())
    for name in table.column_names:
        h.update(name.encode())
        for chunk in table.column(name).chunks:
            h.update(f"{chunk.offset}:{len(chunk)}".encode())
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(buf)


class Checkpoint:
    """The training state after each finished epoch (weights, optimiser, both RNGs, history,
    the best epoch so far), written atomically to ``folder``: a killed ``train-student`` rerun
    (or ``finetune-teacher``) rerun with the same command resumes after the last finished epoch
    and ends with the weights an uninterrupted run ends with (same thread count: float sums
    depend on it)."""

    def __init__(self, folder: str, run_id: str):
        self.folder, self.run_id = folder, run_id
        self.path = os.path.join(folder, "state.pt")

    def load(self) -> dict | None:
        if not os.path.exists(self.path):
            return None
        import torch

        try:
            state = torch.load(self.path, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint costs a restart, not the run
            logger.warning(
                "checkpoint %s can't be read (%s): training from the start", self.path, exc
            )
            return None
        if state.get("run_id") != self.run_id:
            logger.warning(
                "checkpoint %s belongs to another run (config or data differ): training from "
                "the start",
                self.path,
            )
            return None
        return state

    def save(self, state: dict) -> None:
        import torch

        os.makedirs(self.folder, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            torch.save(state | {"run_id": self.run_id}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def replace_folder(staged: str, out: str) -> str | None:
    """Put the finished folder ``staged`` at ``out``: at every moment ``out`` is the old folder
    or the new one, whole. Returns the path now holding the old folder (the caller removes it),
    or None when there was none. The new folder's files are on disk before the swap and the
    swap is on disk when this returns (fsync), so a power cut cannot leave a named but empty
    file."""
    sync_folder(staged)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.exists(out) or (os.path.isdir(out) and not os.listdir(out)):
        os.rename(staged, out)  # replaces an empty folder atomically
        fsync_path(parent)
        return None
    if _exchange(staged, out):
        fsync_path(parent)
        return staged
    # no RENAME_EXCHANGE here (some network file systems, macOS): a short window without
    # ``out``, which a kill can make long: ``recover_swap`` puts the old folder back
    old = f"{staged}.old"
    os.rename(out, old)
    try:
        os.rename(staged, out)
    except BaseException:
        os.rename(old, out)
        raise
    fsync_path(parent)
    return old


def discard(old: str | None) -> None:
    """Remove the old folder ``replace_folder`` returned (None: nothing to do), renamed first to
    ``<old>.trash``: a kill during the removal must not leave a half folder under the name that
    ``recover_swap`` would put back at ``out``."""
    if old:
        trash = f"{old}.trash"
        os.rename(old, trash)
        shutil.rmtree(trash, ignore_errors=True)


def sync_folder(folder: str) -> None:
    """fsync every file and folder under ``folder``, then ``folder`` itself."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fsync_path(path)
        for name in dirs:
            fsync_path(os.path.join(root, name))
    fsync_path(folder)


def fsync_path(path: str) -> None:
    """fsync one file or folder (a folder: the names in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_swap(out: str, pattern: str) -> str | None:
    """Put back the old folder of a swap that a kill cut between its two renames (``out``
    missing, the old folder at ``<out><pattern>.old``); returns the path it came from."""
    if os.path.lexists(out):
        return None
    olds = sorted(glob.glob(glob.escape(out) + pattern + ".old"), key=os.path.getmtime)
    if not olds:
        return None
    os.rename(olds[-1], out)
    logger.warning("%s was missing after a cut swap: its old folder %s is back", out, olds[-1])
    return olds[-1]


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"could not swap {a} and {b}: {os.strerror(err)}")


def hold_lock(path: str, what: str) -> int:
    """Take the ``flock`` on ``path`` for the life of this process (returns its descriptor), or
    say in one line that another process holds it: two runs writing one folder would mix it."""
    import fcntl

    is_dir = os.path.isdir(path)  # a folder's own descriptor takes a flock too
    fd = os.open(path, os.O_RDONLY if is_dir else os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(f"another process is writing {what} (it holds {path})") from None
    return fd
