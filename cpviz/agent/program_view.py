"""The observed program beyond its tasks, as the no-progress detector asks about it: did any of
its threads move, did any thread or process below it use CPU, does a thread sleep on the world
outside (a timer, I/O, a child)? Read cheaply from ``/proc`` (psutil where it is missing), and
only for a run that looks stuck (see :mod:`cpviz.agent.progress`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from types import FrameType
from typing import Protocol

from cpviz.agent.watchdog import classify
from cpviz.engine import procfs

#: A thread or process "ran" when it used at least this share of one check period since it
#: was last read (however long ago that was: a stale reading errs towards "ran", so late, never
#: wrong). Measured here: a thread polling a lock every 50 ms uses about 0.2 % of a core; a
#: computing one close to 100 %, and one of 16 busy processes sharing 2 cores about 12 %.
CPU_SHARE = 0.02

class Program(Protocol):
    """What the detector asks about the observed program beyond its tasks (a test scripts it)."""

    def moved(self) -> bool:
        """Whether a Python thread of the program ran since the last call."""

    def cpu(self) -> Iterable[tuple[Hashable, float]]:
        """CPU seconds so far of each thread and process of the program, in the order worth
        reading; consumed lazily, so the reading stops at the first that ran."""

    def waits_outside(self) -> bool:
        """Whether a thread of the program sleeps on the world outside (a timer, I/O)."""





def _task_cpu(task_dir: str) -> float | None:
    """CPU seconds of one thread: ``schedstat`` (ns), else ``stat`` (clock ticks)."""
    books = procfs.schedstat(task_dir + "/schedstat")
    if books is not None:
        return books[0]
    fields = procfs.stat_fields(task_dir + "/stat")
    if fields:
        with contextlib.suppress(ValueError, IndexError):
            return (int(fields[11]) + int(fields[12])) / procfs.CLK_TCK  # utime, stime
    return None


class ProgramView:
    """What the kernel says about the observed program, read from inside this process.

    :meth:`cpu` yields ``(("thread", tid), seconds)`` for each thread that ``skip`` does not
    name (cpviz's probes), then ``(("process", pid), seconds)`` for every descendant, found
    through each thread's ``/proc/<pid>/task/<tid>/children``; without /proc, psutil reads the
    same. :meth:`waits_outside` tells whether a thread sleeps on the world outside.

    Every file read lets go of the GIL, and while the program's threads fight over it the
    reading thread (the loop's) may wait several switch intervals to get it back. So
    :meth:`moved` looks first, with no syscall at all, for a Python thread that ran; and a CPU
    reading its consumer stopped early stopped at one that ran, which is read first next time:
    a busy program costs one small file per reading, if any.
    """

    def __init__(
        self, skip: Callable[[], Collection[int]], proc: str = "/proc", pid: int | None = None
    ) -> None:
        self._skip = skip
        self._proc = proc
        self._pid = os.getpid() if pid is None else pid
        self._has_proc: bool | None = None
        #: The last one yielded, and whether that reading ran to its end.
        self._last: tuple[str, int] | None = None
        self._finished = True
        #: The hot thread's schedstat, kept open: re-read with one ``pread``, not three calls.
        self._hot_file: tuple[str, int] | None = None
        #: Where each Python thread was at the last :meth:`moved`: its innermost frames' code
        #: and instruction.
        self._spots: dict[int, tuple[tuple[int, int], ...]] = {}

    def moved(self) -> bool:
        """Whether a Python thread of the program ran since the last call: its innermost
        frames are other code, or at other instructions, than then.

        Free of syscalls. A blocked thread stays put; a busy one is caught unless seen twice
        at the same spot of a tight loop, and then :meth:`cpu` tells.
        """
        natives = {t.ident: t.native_id for t in threading.enumerate()}
        skip = self._skip()
        frames = sys._current_frames()
        spots: dict[int, tuple[tuple[int, int], ...]] = {}
        moved = False
        try:
            for ident, frame in frames.items():
                if natives.get(ident) in skip:
                    continue
                spot: list[tuple[int, int]] = []
                f: FrameType | None = frame
                while f is not None and len(spot) < 3:
                    spot.append((id(f.f_code), f.f_lasti))
                    f = f.f_back
                spots[ident] = here = tuple(spot)
                moved = moved or self._spots.get(ident, here) != here
        finally:
            del frames
        self._spots = spots
        return moved

    def _proc_here(self) -> bool:
        if self._has_proc is None:
            self._has_proc = os.path.isdir(f"{self._proc}/{self._pid}/task")
        return self._has_proc

    def cpu(self) -> Iterator[tuple[Hashable, float]]:
        """CPU seconds so far of the program's threads, then of the processes below it."""
        return self._from_proc() if self._proc_here() else self._from_psutil()

    def waits_outside(self) -> bool:
        """Whether a thread of the program sleeps on the world outside, so it will wake by
        itself: the kernel names its wait (``wchan``) and it is no futex (a lock, a queue, an
        event, the GIL: another thread of the program) but a timer, I/O or a child process.

        The standard library's process-pool plumbing is left out (its waits end when worker
        processes act, and those are judged by their CPU), and so is every thread where
        ``wchan`` says nothing (some kernels hide it): there, only the CPU tells.
        """
        if not self._proc_here():
            return False
        root = f"{self._proc}/{self._pid}/task"
        try:
            tids = os.listdir(root)
        except OSError:
            return False
        skip = self._skip()
        outside: list[int] = []
        for tid in tids:
            if tid.isdigit() and int(tid) not in skip:
                where = (procfs.read(f"{root}/{tid}/wchan") or b"").strip()
                if where not in (b"", b"0") and b"futex" not in where:
                    outside.append(int(tid))
        if not outside:
            return False
        idents = {t.native_id: t.ident for t in threading.enumerate()}
        frames = sys._current_frames()
        try:
            for native in outside:
                ident = idents.get(native)
                frame = frames.get(ident) if ident is not None else None
                # A thread Python does not run (a C library's) has no stack to read: its wait
                # is its own, and counts.
                if frame is None or not _pool_plumbing(frame):
                    return True
            return False
        finally:
            del frames

    def _from_proc(self) -> Iterator[tuple[Hashable, float]]:
        hot = None if self._finished else self._last
        self._finished, self._last = False, None
        skip = self._skip()
        if hot is not None:
            cpu = self._cpu_of(*hot, skip)
            if cpu is not None:
                self._last = hot
                yield hot, cpu
        root = f"{self._proc}/{self._pid}/task"
        try:
            tids = os.listdir(root)
        except OSError:
            return
        for tid in tids:
            key = ("thread", int(tid)) if tid.isdigit() else None
            if key is not None and key != hot and key[1] not in skip:
                cpu = _task_cpu(f"{root}/{tid}")
                if cpu is not None:
                    self._last = key
                    yield key, cpu
        todo = self._children(self._pid, tids)
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                tids = os.listdir(f"{self._proc}/{pid}/task")
            except OSError:
                continue  # gone meanwhile
            if ("process", pid) != hot:
                self._last = ("process", pid)
                yield self._last, self._sum(pid, tids)
            todo.extend(self._children(pid, tids))
        self._finished = True

    def _cpu_of(self, kind: str, ident: int, skip: Collection[int]) -> float | None:
        """One thread's or process's CPU seconds, or None when it is gone (or now a probe)."""
        if kind == "thread":
            if ident in skip:
                return None
            return self._hot_thread(f"{self._proc}/{self._pid}/task/{ident}")
        try:
            tids = os.listdir(f"{self._proc}/{ident}/task")
        except OSError:
            return None
        return self._sum(ident, tids)

    def _hot_thread(self, task_dir: str) -> float | None:
        path = task_dir + "/schedstat"
        held = self._hot_file
        if held is not None and held[0] != path:
            self.close()
            held = None
        if held is None:
            try:
                held = self._hot_file = (path, os.open(path, os.O_RDONLY))
            except OSError:
                return _task_cpu(task_dir)  # no schedstat here: its stat, the usual way
        try:
            return int(os.pread(held[1], 4096, 0).split()[0]) / 1e9
        except (OSError, ValueError, IndexError):  # the thread is gone
            self.close()
            return None

    def close(self) -> None:
        """Let go of the file kept open (the detector's detach calls this)."""
        held, self._hot_file = self._hot_file, None
        if held is not None:
            with contextlib.suppress(OSError):
                os.close(held[1])

    def _sum(self, pid: int, tids: Iterable[str]) -> float:
        return sum(_task_cpu(f"{self._proc}/{pid}/task/{tid}") or 0.0 for tid in tids)

    def _children(self, pid: int, tids: Iterable[str]) -> list[int]:
        out: list[int] = []
        for tid in tids:
            data = procfs.read(f"{self._proc}/{pid}/task/{tid}/children")
            if data:
                out.extend(int(child) for child in data.split())
        return out

    def _from_psutil(self) -> Iterator[tuple[Hashable, float]]:
        try:  # only where /proc is missing; a program's interpreter may not have it either
            import psutil
        except ImportError:
            return
        try:
            me = psutil.Process(self._pid)
            threads = me.threads()
        except psutil.Error:
            return
        # Only where the ids are the OS's (Linux, Windows) can cpviz's probes be left out;
        # elsewhere (macOS numbers them 1, 2, ...) the threads say nothing rather than lie.
        if threading.get_native_id() in {t.id for t in threads}:
            skip = self._skip()
            for t in threads:
                if t.id not in skip:
                    yield ("thread", t.id), t.user_time + t.system_time
        try:
            children = me.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                yield ("process", child.pid), times.user + times.system


_POOL_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep
    for module in (multiprocessing, concurrent.futures)
)


def _pool_plumbing(frame: FrameType) -> bool:
    """Whether a thread waits inside the standard library's process pools (a pool's result
    and worker handlers, a multiprocessing queue's ``get``): the innermost library frames."""
    f: FrameType | None = frame
    while f is not None and classify(f.f_code.co_filename) == "library":
        if os.path.abspath(f.f_code.co_filename).startswith(_POOL_DIRS):
            return True
        f = f.f_back
    return False
