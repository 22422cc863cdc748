"""The ``transferset`` command: dispatches to each subcommand's own entry point, nothing more."""

from __future__ import annotations

import importlib
import logging
import sys

# subcommand -> (module, function, one-line help); each parses its own flags
COMMANDS = {
    "build": ("pipelines.build", "main", "build a transfer set (Beam pipeline -> Arrow shards)"),
}


def _usage() -> str:
    lines = ["usage: transferset [-v] COMMAND [flags]", "", "commands:"]
    lines += [f"  {name:<18}{help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "`transferset COMMAND --help` lists a command's flags."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
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
    module, func, _ = COMMANDS[command]
    return getattr(importlib.import_module(module), func)(rest)


if __name__ == "__main__":
    sys.exit(main())
