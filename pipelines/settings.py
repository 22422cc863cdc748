"""The build's memory and work-unit settings: one dataclass, one default each.

What a worker holds at once is set here, never by the size of the data: the data is cut into
batches, spills, buckets, shards and teacher chunks of these sizes (``exchange.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from augment.flags import flag_name, setting


@dataclass(frozen=True)
class ScaleConfig:
    batch_size: int = setting(1000, "source rows per batch between stages")
    spill_rows: int = setting(
        100_000, "rows a worker buffers before writing them to the work folder"
    )
    max_bucket_rows: int = setting(
        250_000, "rows per dedup bucket at most (the bucket count follows the data)"
    )
    max_shard_rows: int = setting(
        500_000,
        "rows per output shard at most, when --num-shards is not given "
        "(~60 MB of SST-2-like rows; datasets' own default shard is 500 MB)",
    )
    teacher_chunk_rows: int = setting(
        4096,
        "rows per unit of teacher work: each is scored, then made durable as one cache part, "
        "so a killed build loses at most one chunk per worker",
    )
    id_bucket_bytes: int = setting(16 << 20, "input bytes per bucket of the duplicate-id check")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{flag_name(f.name)} must be a positive integer, got {value!r}")
