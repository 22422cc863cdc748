"""The ``transferset`` command: parses arguments and calls into the packages, nothing more."""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="transferset",
        description="Build transfer sets for task-specific knowledge distillation.",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    ap.add_subparsers(dest="command", metavar="COMMAND")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = _parser()
    args, rest = ap.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
