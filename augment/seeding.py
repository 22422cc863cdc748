"""Stable hashing and per-example random generators.

Python's ``hash()`` is salted per process, so everything that must agree across workers and
runs goes through ``blake2b`` here.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash64(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process, machine and run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def source_rng(seed: int, source_id: str) -> np.random.Generator:
    """The random stream of one source example, a function of ``(seed, source_id)`` only.

    A counter-based Philox generator keyed by a hash of both: about 10 µs to create, so one per
    source example is affordable while one per sample would not be. Sample ``i`` reads row ``i``
    of a fixed-width block of this stream, so its draws depend only on ``(seed, source_id, i)``
    — not on ``n_iter`` or on the order in which examples are processed.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(source_id, str):
        raise TypeError(f"source_id must be a str, got {type(source_id).__name__}")
    digest = hashlib.blake2b(
        f"{seed}\x00{source_id}".encode(), digest_size=16, person=b"transferset"
    ).digest()
    return np.random.Generator(np.random.Philox(key=np.frombuffer(digest, dtype=np.uint64)))
