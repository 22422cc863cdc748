"""The build's memory and work-unit settings: one dataclass, one default each.

What a worker holds at once is set here, never by the size of the data: the data is cut into
batches, spills, buckets, shards and teacher chunks of these sizes (``exchange.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScaleConfig:
    batch_size: int = field(default=1000, metadata={"help": "source rows per batch between stages"})
    spill_rows: int = field(
        default=100_000,
        metadata={"help": "rows a worker buffers before writing them to the work folder"},
    )
    max_bucket_rows: int = field(
        default=250_000,
        metadata={"help": "rows per dedup bucket at most (the bucket count follows the data)"},
    )
    max_shard_rows: int = field(
        default=500_000,
        metadata={
            "help": "rows per output shard at most, when --num-shards is not given "
            "(~60 MB of SST-2-like rows; datasets' own default shard is 500 MB)"
        },
    )
    teacher_chunk_rows: int = field(
        default=4096,
        metadata={
            "help": "rows per unit of teacher work: each is scored, then made durable as one "
            "cache part, so a killed build loses at most one chunk per worker"
        },
    )
    id_bucket_bytes: int = field(
        default=16 << 20,
        metadata={"help": "input bytes per bucket of the duplicate-id check"},
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                flag = "--" + f.name.replace("_", "-")
                raise ValueError(f"{flag} must be a positive integer, got {value!r}")


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls) -> None:
    """One ``--flag`` per dataclass field: name, type, default and help come from the field."""
    for f in dataclasses.fields(cls):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(f.default),
            default=f.default,
            help=f"{f.metadata.get('help', '')} (default {f.default:,})".strip(),
        )


def from_args(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
