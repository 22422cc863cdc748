"""Local ``transformers`` checkpoints, loaded safely: safetensors, or a pickle ``.bin`` only
when the caller says it trusts it (unpickling can run arbitrary code); a tokenizer only when it
has its files and really knows words; and the one rule that maps a checkpoint's labels onto a
task's. Every command that loads a checkpoint (build, evaluate, finetune-teacher,
train-student --teacher, export) comes through here. Torch-free at import."""

from __future__ import annotations

import logging
import os
import re

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
