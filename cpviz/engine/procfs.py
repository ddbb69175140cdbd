"""Small reads of Linux's /proc, shared by everything that looks at processes from outside
(the viewer's samplers and accounting) or at its own threads (the no-progress detector).

Standard library only, and each read is a few syscalls with no buffering: these run many times
a second. Every reader returns None where the file is gone or the platform has none.
"""

from __future__ import annotations

import os

#: Clock ticks per second, the unit of the CPU times in ``stat``.
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read(path: str) -> bytes | None:
    """A small /proc file's bytes, or None when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def stat_fields(path: str) -> list[bytes] | None:
    """The fields of a ``stat`` file after the command name (the state letter is field 0),
    which can hold spaces and parentheses of its own."""
    raw = read(path)
    if raw is None:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def schedstat(path: str) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable waiting for one) from a ``schedstat`` file: the
    scheduler's own nanosecond books, finer than ``stat``'s clock ticks."""
    raw = read(path)
    if not raw:
        return None
    parts = raw.split()
    try:
        return int(parts[0]) / 1e9, int(parts[1]) / 1e9
    except (IndexError, ValueError):
        return None
