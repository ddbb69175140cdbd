"""Functions that run in pool workers. Tiny on purpose: spawned workers import this module."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

#: The kinds of CPU job: pure Python holds the GIL; hashlib and zlib release it in C.
KINDS = ("python", "hashlib", "zlib")
#: Bytes one unit of ``work`` stands for, so that a job of each kind takes about as long as
#: ``spin`` over the same ``work`` (calibrated on the 2-core machine cpviz was built on).
BYTES_PER_UNIT = {"hashlib": 128, "zlib": 2}
_CHUNK = 1 << 20
_SPIN_STRIDE = 1 << 16
_data: bytes | None = None


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


def spin(iterations: int, stop: threading.Event | None = None) -> int:
    """Pure-Python arithmetic that holds the GIL the whole time.

    ``stop`` is looked at between strides, so a thread running this exits soon after a stop.
    """
    acc = 0
    for first in range(0, iterations, _SPIN_STRIDE):
        if stop is not None and stop.is_set():
            break
        for i in range(first, min(first + _SPIN_STRIDE, iterations)):
            acc = (acc + i * i) % 1_000_003
    return acc


def _chunk() -> memoryview:
    """1 MiB of seeded random text over 16 letters: compressible, so zlib has real work."""
    global _data
    if _data is None:
        import random

        letters = bytes(b"abcdefghijklmnop"[i % 16] for i in range(256))
        _data = random.Random(7).randbytes(_CHUNK).translate(letters)
    return memoryview(_data)


def digest(nbytes: int, stop: threading.Event | None = None) -> int:
    """SHA-256 over ``nbytes`` in 1 MiB updates; hashlib releases the GIL for each one."""
    import hashlib

    data, h, left = _chunk(), hashlib.sha256(), nbytes
    while left > 0 and not (stop is not None and stop.is_set()):
        piece = data[: min(left, _CHUNK)]
        h.update(piece)
        left -= len(piece)
    return h.digest()[0]


def squeeze(nbytes: int, stop: threading.Event | None = None) -> int:
    """zlib-compress ``nbytes`` in 1 MiB pieces; zlib releases the GIL while it deflates."""
    import zlib

    data, left, out = _chunk(), nbytes, 0
    while left > 0 and not (stop is not None and stop.is_set()):
        piece = data[: min(left, _CHUNK)]
        out += len(zlib.compress(piece))
        left -= len(piece)
    return out


def job(kind: str, work: int, stop: threading.Event | None = None) -> int:
    """One CPU job of ``work`` units of ``kind`` (one of :data:`KINDS`)."""
    if kind == "python":
        return spin(work, stop)
    if kind == "hashlib":
        return digest(work * BYTES_PER_UNIT["hashlib"], stop)
    if kind == "zlib":
        return squeeze(work * BYTES_PER_UNIT["zlib"], stop)
    raise ValueError(f"unknown job kind {kind!r}; choose one of: {', '.join(KINDS)}")
