"""Functions that run in pool workers. Tiny on purpose: spawned workers import this module."""

from __future__ import annotations

import os
import signal
import time


def worker_init(cpus: list[int] | None = None) -> None:
    """Leave Ctrl+C to the parent (it stops the pool itself, without a traceback per worker),
    and keep to the cores the lab is pinned to."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def hello(hold_s: float) -> int:
    """Answer with this worker's pid; holding briefly spreads the calls over all workers."""
    time.sleep(hold_s)
    return os.getpid()


def spin(iterations: int) -> int:
    """Pure-Python arithmetic that holds the GIL the whole time."""
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) % 1_000_003
    return acc
