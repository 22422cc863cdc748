"""Command-line flags derived from config dataclasses, so that each default lives in one place.

A field declared with ``setting(default, "help", choices=...)`` becomes ``--field-name`` with the
field's type (``X | None`` -> ``X``; ``bool`` -> an on/off switch), its default, its choices and
its help, followed by the default. Commands read the values back with ``from_args``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``ValueError`` line (the CLI prints it, status 2) instead
    of a usage block, with a "did you mean" for a mistyped flag."""

    def error(self, message: str):
        import difflib

        if message.startswith("unrecognized arguments:"):
            flags = [s for a in self._actions for s in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.75)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise ValueError(f"{message} (see {self.prog} --help)")


def setting(
    default: Any,
    help: str,  # noqa: A002
    *,
    choices: tuple | None = None,
    minimum: float | None = None,
    above: float | None = None,
):
    """A dataclass field that knows its command-line help, its choices and its range
    (``minimum``: value >= it; ``above``: value > it), checked by ``check_ranges``."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "above": above}
    return dataclasses.field(default=default, metadata=meta)


def check_ranges(obj, prefix: str = "") -> None:
    """One clear ``ValueError`` for the first field of ``obj`` outside its declared range
    (``None`` is allowed where the field's default is ``None``); call from ``__post_init__``."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        lo, above = f.metadata.get("minimum"), f.metadata.get("above")
        choices = f.metadata.get("choices")
        name = flag_name(prefix + f.name)
        if value is None:
            continue
        if (lo is not None or above is not None) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if lo is not None and value < lo:
            raise ValueError(f"{name} must be >= {lo}, got {value}")
        if above is not None and not value > above:
            raise ValueError(f"{name} must be > {above}, got {value}")
        if choices is not None and value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _base_type(hint) -> type:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls,
    *,
    skip: tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
    helps: dict[str, str] | None = None,
    prefix: str = "",
) -> None:
    """One flag per field of ``cls`` that has a help text (``setting``), bar ``skip``.

    ``defaults``/``helps`` replace a field's default or help where a command resolves the value
    itself (e.g. the build's mask token comes from the teacher when the flag is not given).
    ``prefix`` goes before each flag name (``teacher_`` -> ``--teacher-max-length``).
    """
    hints = typing.get_type_hints(cls)
    defaults, helps = defaults or {}, helps or {}
    for f in dataclasses.fields(cls):
        if f.name in skip or "help" not in f.metadata:
            continue
        default = defaults.get(f.name, f.default)
        text = helps.get(f.name, f.metadata["help"])
        kind = _base_type(hints[f.name])
        if kind is bool:
            parser.add_argument(
                flag_name(prefix + f.name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{text} (default: {'on' if default else 'off'})",
            )
            continue
        shown = f"{default:,}" if isinstance(default, int) and default >= 10_000 else default
        parser.add_argument(
            flag_name(prefix + f.name),
            type=kind,
            default=default,
            choices=f.metadata.get("choices"),
            help=f"{text} (default: {shown})" if default is not None else text,
        )


def from_args(cls, args: argparse.Namespace, *, prefix: str = "", **extra):
    """``cls`` built from the parsed flags of its fields (plus ``extra`` values)."""
    parsed = vars(args)
    values = {
        f.name: parsed[prefix + f.name]
        for f in dataclasses.fields(cls)
        if prefix + f.name in parsed and f.name not in extra
    }
    return cls(**(values | extra))


def init_flat(obj, values: dict, groups: dict[str, dict[str, str]]) -> None:
    """``__init__`` of a settings dataclass that also takes its parts' settings flat, as their
    flags are named: ``values`` not naming a field of ``obj`` go to the part (a dataclass field
    of ``obj``) whose ``groups[part]`` maps the key to one of its fields (``teacher_max_length``
    -> ``max_length``); every field gets its value or default; an unknown key is a
    ``TypeError`` with a suggestion."""
    import difflib

    own = {f.name: f for f in dataclasses.fields(obj)}
    parts: dict[str, dict] = {part: {} for part in groups}
    for key, value in values.items():
        if key in own:
            continue
        part = next((p for p, keys in groups.items() if key in keys), None)
        if part is None:
            known = sorted(own.keys() | {k for keys in groups.values() for k in keys})
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TypeError(f"{type(obj).__name__} got an unknown setting {key!r}{hint}")
        parts[part][groups[part][key]] = value
    for name, f in own.items():
        if name in values:
            value = values[name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        else:
            value = f.default_factory()
        object.__setattr__(obj, name, value)
    for part, given in parts.items():
        current = getattr(obj, part)
        if dataclasses.is_dataclass(current):
            object.__setattr__(obj, part, dataclasses.replace(current, **given))
        else:  # a plain dict of settings
            object.__setattr__(obj, part, {**current, **given})
