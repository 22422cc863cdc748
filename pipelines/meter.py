"""Counters and progress of the build's stages (Beam metrics in one namespace)."""

from __future__ import annotations

import logging
import time

from apache_beam.metrics import Metrics

logger = logging.getLogger(__name__)
NAMESPACE = "transferset"


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class StageMeter:
    """Counts rows and busy time of one stage; logs progress at most every ``every`` seconds.

    With ``total`` (rows this stage will see, when known) the log line carries a rate and an ETA.
    """

    def __init__(self, name: str, every: float = 15.0):
        self.name = name
        self.rows = counter(name)
        self.busy_us = counter(f"{name}_busy_us")
        self.every = every
        self.seen = 0
        self.started = time.monotonic()
        self.last = self.started

    def done(self, rows: int, started: float, total: int | None = None) -> None:
        self.rows.inc(rows)
        self.busy_us.inc(int((time.perf_counter() - started) * 1e6))
        self.seen += rows
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = self.seen / max(now - self.started, 1e-9)
        if total:
            left = max(total - self.seen, 0) / rate if rate else float("inf")
            logger.info(
                "%s: %d of %d rows (%.0f%%) on this worker, %.0f rows/s, ETA %.0f s",
                self.name,
                self.seen,
                total,
                100 * self.seen / total,
                rate,
                left,
            )
        else:
            logger.info(
                "%s: %d rows so far on this worker, %.0f rows/s", self.name, self.seen, rate
            )
