"""Small reads of Linux's /proc, shared by everything that looks at processes from outside
(the viewer's samplers and accounting) or at its own threads (the no-progress detector).

Standard library only, and each read is a few syscalls with no buffering: these run many times
a second. Every reader returns None where the file is gone or the platform has none.
"""

from __future__ import annotations

import contextlib
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


#: ``futex`` in ``/proc/<pid>/task/<tid>/syscall`` by machine (the number differs by ABI).
FUTEX_NR = {"x86_64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98, "i686": 240, "i386": 240}


class TaskFiles:
    """One thread's ``schedstat``, ``stat`` and ``wchan``, kept open and read again with
    ``pread``: a high-rate sampler pays a syscall per read, not a path walk and two more."""

    __slots__ = ("closed", "fds", "path")

    def __init__(self, pid: int, tid: int) -> None:
        self.path = f"/proc/{pid}/task/{tid}/"
        self.fds: dict[str, int] = {}
        self.closed = False

    def _read(self, name: str) -> bytes | None:
        if self.closed:
            return None
        fd = self.fds.get(name)
        if fd is None:
            try:
                fd = os.open(self.path + name, os.O_RDONLY)
            except OSError:
                fd = -1  # gone, or not ours to read: not asked again
            self.fds[name] = fd
        if fd < 0:
            return None
        try:
            return os.pread(fd, 4096, 0)
        except OSError:
            return None

    def sched(self) -> tuple[int, int, int] | None:
        """(nanoseconds on a CPU, nanoseconds runnable waiting for one, times it was given a
        CPU), or None once gone."""
        raw = self._read("schedstat")
        if not raw:
            return None
        parts = raw.split()
        try:
            return int(parts[0]), int(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            return None

    def state(self, core: bool = True) -> tuple[bytes, int] | None:
        """(state letter, CPU it last ran on: ``stat`` field 39, or -1 when not asked for),
        or None once gone. The core costs a split of the whole line: ask only when it ran."""
        raw = self._read("stat")
        if not raw:
            return None
        at = raw.rfind(b")") + 2
        if not core:
            return raw[at : at + 1], -1
        fields = raw[at:].split(None, 37)
        try:
            return fields[0], int(fields[36])
        except (IndexError, ValueError):
            return None

    def children(self) -> list[int] | None:
        """Processes this thread started that are still alive, or None where not shown."""
        raw = self._read("children")
        if raw is None:
            return None
        try:
            return [int(pid) for pid in raw.split()]
        except ValueError:
            return None

    def in_futex(self, futex_nr: int | None) -> bool | None:
        """Whether the sleeping thread waits in a futex (the GIL, or a lock): its ``wchan``,
        else the syscall it is in; None where the platform shows neither."""
        wchan = self._read("wchan")
        if wchan and wchan != b"0":
            return wchan.startswith(b"futex")
        if futex_nr is None:
            return None
        raw = self._read("syscall")
        if not raw or raw.startswith(b"running"):
            return None
        try:
            return int(raw.split(None, 1)[0]) == futex_nr
        except ValueError:
            return None

    def close(self) -> None:
        for fd in self.fds.values():
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fds.clear()
        self.closed = True
