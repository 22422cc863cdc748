"""Checks that run before a build does any work: the flags Beam would get, the devices, the
input files. Each failure is one ``ValueError``/``FileNotFoundError`` line (status 2), and
``one_line`` makes any error one line. Light at import: the CLI uses it for every command."""

from __future__ import annotations

import argparse
import difflib
import os
import re

# runners whose workers are this machine's processes: a device missing here is missing there
LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner")
HEAD_BYTES = 1 << 16


def _beam_parser() -> argparse.ArgumentParser:
    from apache_beam.options import pipeline_options as po

    parser_cls = getattr(po, "_BeamArgumentParser", argparse.ArgumentParser)
    parser = parser_cls(allow_abbrev=False, add_help=False)
    seen: dict[str, type] = {}
    for cls in po.PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - what Beam's get_all_options does
    return parser


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]  # noqa: SLF001


def check_beam_args(beam_args: list[str], ours: argparse.ArgumentParser) -> None:
    """Refuse what neither our parser nor any Beam ``PipelineOptions`` class knows: a typo
    such as ``--n-iters 3`` would otherwise run for hours with the default."""
    beam = _beam_parser()
    _, unknown = beam.parse_known_args(beam_args)
    flags = [u.split("=", 1)[0] for u in unknown if u.startswith("-")]
    if flags or unknown:
        bad = flags[0] if flags else unknown[0]
        close = difflib.get_close_matches(bad, _flags(ours) + _flags(beam), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(
            f"unrecognized argument {bad!r}{hint}: not a build flag nor an Apache Beam option"
        )


def runner(beam_args: list[str]) -> str:
    for i, a in enumerate(beam_args):
        if a.startswith("--runner="):
            return a.split("=", 1)[1]
        if a == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    return "FnApiRunner"


def check_device(device: str, beam_args: list[str]) -> None:
    """A CUDA teacher on a local runner needs CUDA here (remote workers are not checked)."""
    if not device.startswith("cuda") or runner(beam_args).split(".")[-1] not in LOCAL_RUNNERS:
        return
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            f"--teacher-device {device}: this machine has no CUDA device (torch "
            f"{torch.__version__}); use --teacher-device cpu or auto"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"--teacher-device {device}: there are {torch.cuda.device_count()} CUDA devices"
        )


def check_input_file(path: str, fmt: str) -> None:
    """Refuse a folder, an empty file, a binary file or CR-only line endings up front."""
    if "://" not in path and os.path.isdir(path):
        raise ValueError(f"--input {path!r} is a folder: give a file or a glob ({path}/*.tsv)")
    from apache_beam.io.filesystems import FileSystems

    sizes = [m.size_in_bytes for m in FileSystems.match([path])[0].metadata_list]
    if sizes and sizes[0] == 0:
        raise ValueError(f"--input {path!r} is empty (0 bytes)")
    if fmt == "parquet":
        return
    with FileSystems.open(path) as f:  # decompressed where the name says .gz, .bz2, ...
        try:
            head = f.read(HEAD_BYTES)
        except OSError as exc:
            raise ValueError(f"--input {path!r} can't be read: {exc}") from exc
    if not head:
        raise ValueError(f"--input {path!r} holds no text (empty once decompressed)")
    if b"\x00" in head:
        raise ValueError(
            f"--input {path!r} is not a text file (it has NUL bytes); for --format {fmt} give "
            "UTF-8 text (compressed files need their .gz / .bz2 name)"
        )
    if b"\r" in head and b"\n" not in head:
        raise ValueError(
            f"--input {path!r} ends its lines with CR only (old Mac style): convert them to LF, "
            f"e.g. tr '\\r' '\\n' < {path} > fixed.{fmt}"
        )


def one_line(exc: BaseException) -> str:
    """An error as one line. Beam re-raises a worker's error as a ``RuntimeError`` whose text
    holds the worker's traceback: its last ``SomeError: message`` line is the cause."""
    text = str(exc) or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    causes = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b:? ", ln)]
    line = causes[-1] if causes and len(lines) > 1 else lines[0]
    line = re.sub(r"\s*\[while running '[^']*'\]\s*$", "", line)
    return line if len(line) <= 400 else line[:400] + " ..."


def check_columns(path: str, spec, fmt: str, columns=None) -> None:
    """Before any work: the columns the task (or ``--text-column`` ...) names must be in the
    file's header (its first record for JSONL, its schema for Parquet); one clear error."""
    import csv
    import json

    from apache_beam.io.filesystems import FileSystems

    from pipelines.readers import Columns, RowBuilder, _lines, _records

    columns = columns or Columns()
    if fmt in ("glue", "tsv", "csv"):
        delimiter, quoting = (",", csv.QUOTE_MINIMAL) if fmt == "csv" else ("\t", csv.QUOTE_NONE)
        first = next(_records(path, delimiter, quoting), None)
        if first is None or first.fields is None:
            return  # empty, or a bad first line: the reader dead-letters it
        if spec.headerless_columns and spec.text_a not in first.fields and not columns.text_a:
            return
        RowBuilder(spec, columns, first.fields, path)
    elif fmt == "jsonl":
        builder = RowBuilder(spec, columns, None, path)
        for _, raw in _lines(path):
            if raw.strip():
                try:
                    record = json.loads(raw)
                except ValueError:
                    return  # dead-lettered by the reader
                missing = [c for c in (builder.a, builder.b) if c and c not in record]
                if isinstance(record, dict) and missing:
                    raise ValueError(
                        f"{path}: the first record has no column {missing} (its keys: "
                        f"{sorted(record)[:12]}); is --task {spec.name} right, or name the "
                        "columns with --text-column / --text-b-column"
                    )
                return
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with FileSystems.open(path) as f:
            RowBuilder(spec, columns, pq.ParquetFile(f).schema_arrow.names, path)
    elif fmt == "text" and spec.is_pair:
        raise ValueError(f"plain text has one sentence per line; task {spec.name} needs pairs")
