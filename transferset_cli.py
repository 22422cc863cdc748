"""The ``transferset`` command: parses arguments and calls into the packages, nothing more.

``build`` parses its own flags (the rest go to Beam); the other commands are parsed here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from augment.flags import OneLineParser

_TASK_HELP = "a GLUE task or alias (augment/tasks.py)"


def finetune_parser() -> argparse.ArgumentParser:
    from augment.flags import add_flags
    from distill.finetune import FinetuneConfig

    ap = OneLineParser(
        prog="transferset finetune-teacher",
        description="Fine-tune a local pretrained encoder into a teacher for a GLUE task.",
    )
    ap.add_argument("--task", required=True, help=_TASK_HELP)
    ap.add_argument("--train", required=True, help="labelled training file (GLUE TSV, ...)")
    ap.add_argument("--dev", required=True, help="labelled dev file, scored after each epoch")
    ap.add_argument("--out", required=True, help="folder for the checkpoint (safetensors)")
    ap.add_argument("--limit", type=int, default=None, help="first K training rows")
    add_flags(ap.add_argument_group("training"), FinetuneConfig, skip=("task",))
    return ap


def _finetune_teacher(argv: list[str]) -> int:
    from augment.flags import from_args
    from distill.finetune import FinetuneConfig

    args = finetune_parser().parse_args(argv)

    from augment.tasks import get_task
    from distill.finetune import finetune_teacher
    from pipelines.readers import read_examples

    spec = get_task(args.task)
    train = read_examples(args.train, spec, limit=args.limit)
    dev = read_examples(args.dev, spec)
    cfg = from_args(FinetuneConfig, args, task=spec.name)
    result = finetune_teacher(cfg, train, dev, spec.label_names, args.out)
    print(json.dumps(result["history"], indent=2))
    print(f"saved the best epoch to {args.out}")
    return 0


def _eval_dataset(path: str, task: str):
    """``--eval`` / ``--data``: a transfer set folder (its originals) or a labelled file."""
    import os

    if os.path.isdir(path):
        from pipelines.transfer_set import is_transfer_set, open_set

        if not is_transfer_set(path):
            import datasets

            ds = datasets.load_from_disk(path)  # a save_to_disk folder
        else:
            ds = open_set(path)
        if "is_original" in ds.column_names:
            ds = ds.filter(lambda r: r["is_original"])
        return ds
    from augment.tasks import get_task
    from pipelines.readers import read_examples

    return read_examples(path, get_task(task))


def train_student_parser() -> argparse.ArgumentParser:
    from augment.flags import add_flags
    from distill.train import BiLSTMSettings, TrainConfig, TransformerSettings

    ap = OneLineParser(
        prog="transferset train-student",
        description="Train a BiLSTM (Tang et al.) or DistilBERT-style student on a transfer "
        "set's cached teacher logits; keep the best dev epoch.",
    )
    ap.add_argument("--shards", required=True, help="transfer set folder (transferset build)")
    ap.add_argument("--task", required=True, help=_TASK_HELP)
    ap.add_argument("--eval", required=True, help="dev file (GLUE TSV, ...) or transfer set")
    ap.add_argument("--out", required=True)
    add_flags(ap.add_argument_group("training (every student)"), TrainConfig, skip=("task",))
    add_flags(ap.add_argument_group("BiLSTM student"), BiLSTMSettings)
    add_flags(ap.add_argument_group("transformer student"), TransformerSettings)
    return ap


def _train_student(argv: list[str]) -> int:
    from augment.flags import from_args
    from distill.train import BiLSTMSettings, TrainConfig, TransformerSettings

    args = train_student_parser().parse_args(argv)

    from augment.tasks import get_task
    from distill.data import load_transfer_set
    from distill.train import train_student

    get_task(args.task)  # an unknown task fails here, before anything is loaded
    cfg = from_args(
        TrainConfig,
        args,
        bilstm=from_args(BiLSTMSettings, args),
        transformer=from_args(TransformerSettings, args),
    ).resolved()
    train, manifest = load_transfer_set(args.shards, args.task, need_logits=args.loss != "ce")
    mask_token = manifest.get("augment", {}).get("mask_token")
    metrics = train_student(
        cfg, train, _eval_dataset(args.eval, args.task), args.out, mask_token=mask_token
    )
    print(
        f"best epoch {metrics['best_epoch']}: dev {metrics['dev']} "
        f"({metrics['parameters']:,} parameters) -> {args.out}"
    )
    return 0


def _evaluate(argv: list[str]) -> int:
    ap = OneLineParser(
        prog="transferset evaluate",
        description="Score a student (or any local classifier checkpoint) with the task's GLUE "
        "metrics, and measure its CPU sentences/s on the same data.",
    )
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True, help=_TASK_HELP)
    ap.add_argument("--data", required=True, help="labelled file or transfer set folder")
    ap.add_argument(
        "--out",
        help="metrics JSON (default: beside the model folder, MODEL-eval-<data name>.json; "
        "never inside it, so an export folder stays as exported)",
    )
    ap.add_argument("--threads", type=int, help="torch threads for the speed measurement")
    ap.add_argument(
        "--batch-size",
        type=int,
        help="rows per forward pass (default: 128 BiLSTM, 64 transformer)",
    )
    ap.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept a pickle .bin checkpoint (refused by default: loading one can run code)",
    )
    args = ap.parse_args(argv)
    for flag, value in (("--threads", args.threads), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")

    import os

    from augment.tasks import get_task
    from distill.evaluate import evaluate

    get_task(args.task)  # an unknown task fails here, before anything is loaded
    result = evaluate(
        args.model,
        args.task,
        _eval_dataset(args.data, args.task),
        threads=args.threads,
        batch_size=args.batch_size,
        allow_pickle=args.allow_pickle,
    )
    data_name = os.path.basename(os.path.normpath(args.data))
    out = args.out or f"{os.path.normpath(args.model)}-eval-{data_name}.json"
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


def _export(argv: list[str]) -> int:
    ap = OneLineParser(
        prog="transferset export",
        description="Export a trained student (BiLSTM or transformer) for serving without this "
        "repo: an ONNX graph with dynamic batch and length axes, its vocabulary or tokenizer "
        "files, and export.json (tokenizer settings, mask token, label names).",
    )
    ap.add_argument("model", help="a trained student folder (train-student --out)")
    ap.add_argument("--out", required=True, help="folder for the export")
    ap.add_argument("--format", default="onnx", choices=("onnx",))
    ap.add_argument(
        "--quantize", action="store_true", help="dynamic int8 weights (ONNX Runtime's quantizer)"
    )
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    ap.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept a pickle .bin checkpoint (refused by default: loading one can run code)",
    )
    args = ap.parse_args(argv)

    from distill.export import export_model

    info = export_model(
        args.model,
        args.out,
        fmt=args.format,
        quantize=args.quantize,
        overwrite=args.overwrite,
        allow_pickle=args.allow_pickle,
    )
    print(json.dumps(info, indent=2))
    print(f"exported to {args.out}")
    return 0


def _report(argv: list[str]) -> int:
    from pipelines.report import SOURCES, write_report

    ap = OneLineParser(
        prog="transferset report",
        description="Describe a transfer set in one streaming pass: counts per stage, ops, "
        "lengths, teacher confidence, entropy and label mix (samples vs originals), diversity "
        "(distinct-n, self-BLEU, BLEU to the source), samples kept per source vs the recipe's "
        "prediction, example samples, dead letters; report.md plus PNG plots.",
    )
    ap.add_argument("shards", help="transfer set folder")
    ap.add_argument("--out", help="where report.md and the PNGs go (default: the folder)")
    ap.add_argument(
        "--sources",
        type=int,
        default=SOURCES,
        help="sources sampled (by a hash of their id) for diversity, yield and examples "
        f"(default: {SOURCES})",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the samples (default: 0)")
    args = ap.parse_args(argv)
    if args.sources < 1:
        ap.error(f"--sources must be >= 1, got {args.sources}")
    print(f"wrote {write_report(args.shards, args.out, sources=args.sources, seed=args.seed)}")
    return 0


def _demo(argv: list[str]) -> int:
    ap = OneLineParser(
        prog="transferset demo",
        description="Teacher fine-tuning, transfer set, students and a report on the SST-2 "
        "sample shipped in the package; offline, a few minutes on 2 CPU cores.",
    )
    ap.add_argument("--out", default="data/demo")
    ap.add_argument("--quick", action="store_true", help="a much smaller run (tests)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from transferset_demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


# subcommand -> (callable path, one-line help)
COMMANDS = {
    "build": ("pipelines.build:main", "build a transfer set (Beam pipeline -> Arrow shards)"),
    "finetune-teacher": (
        f"{__name__}:_finetune_teacher",
        "fine-tune a local encoder into a task teacher",
    ),
    "train-student": (f"{__name__}:_train_student", "train a student on a transfer set"),
    "evaluate": (f"{__name__}:_evaluate", "GLUE metrics and CPU sentences/s of a model"),
    "export": (f"{__name__}:_export", "a trained student as ONNX (+ vocabulary), for serving"),
    "report": (f"{__name__}:_report", "report.md and plots describing a transfer set"),
    "demo": (f"{__name__}:_demo", "the whole path on a packaged SST-2 sample, offline"),
}


def _usage() -> str:
    lines = ["usage: transferset [-v] COMMAND [flags]", "", "commands:"]
    lines += [f"  {name:<18}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`transferset COMMAND --help` lists a command's flags."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose = True
        argv.pop(0)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"transferset: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # library progress bars (weights loading ...) would bury the one error line
        import os

        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not verbose:  # Beam's own INFO lines and its note about optional GCP clients are noise here
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: not r.getMessage().startswith("apitools not found"))
    module, _, func = COMMANDS[command][0].partition(":")
    try:
        return getattr(importlib.import_module(module), func)(rest)
    except KeyboardInterrupt:
        print(f"transferset {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is one line and status 2
        if verbose:
            raise
        from pipelines.preflight import one_line

        print(f"transferset {command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
