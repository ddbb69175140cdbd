"""Functions that run in pool workers. Tiny on purpose: spawned workers import this module."""

from __future__ import annotations

import signal


def worker_init() -> None:
    """Leave Ctrl+C to the parent: it stops the pool itself, without a traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spin(iterations: int) -> int:
    """Pure-Python arithmetic that holds the GIL the whole time."""
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) % 1_000_003
    return acc
