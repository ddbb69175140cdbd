"""The observed process tree, read from outside: who is in it, and how much CPU it has used.

The viewer charges each run with the CPU of the observed process and its descendants only, read
from ``/proc`` (psutil elsewhere), so none of the viewer's own work can land in a run. It also
uses the observed process's session to find every process that side started, even one that was
orphaned, so that quitting leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

import psutil

from cpviz.engine import procfs

_PROC = os.path.isdir("/proc/self/task")


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state is field 0)."""
    return procfs.stat_fields(f"/proc/{pid}/stat")


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    if _PROC:
        out: list[int] = []
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except (OSError, ValueError):
                continue
        return out
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before their children."""
    out: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children(child))
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds of one process, its reaped children included; 0 if it is gone."""
    if _PROC:
        fields = _stat_fields(pid)
        if fields is None:
            return 0.0
        try:
            return sum(int(f) for f in fields[11:15]) / procfs.CLK_TCK
        except (IndexError, ValueError):
            return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every descendant, live or reaped.

    A live process counts its own time; one that has exited and been waited for has already
    been added to its parent's children's time, so nothing is counted twice.
    """
    return sum(process_cpu(p) for p in (pid, *descendants(pid)))


def own_cpu() -> float:
    """CPU seconds of this process (every thread, not its children): the observer's cost."""
    t = os.times()
    return t.user + t.system


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes in session ``sid``: everything the observed side started."""
    if not _PROC:
        out = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, AttributeError):
                if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc.pid)
        return out
    members: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or len(fields) < 4:
            continue
        if fields[3] == str(sid).encode() and fields[0] != b"Z":
            members.append(int(name))
    return members


def _reap(pids: Iterable[int]) -> None:
    """Collect the exit status of any of ``pids`` that are our own children."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def end_session(sid: int, grace: float = 1.0, timeout: float = 3.0) -> list[int]:
    """End every live process of session ``sid`` and wait until none is left.

    For ``grace`` seconds they may end on their own (pool workers exit when their parent goes;
    multiprocessing's resource tracker exits when its pipe closes, after unlinking the pool's
    semaphores, which a SIGKILL would leave behind in /dev/shm); what remains is killed.
    Returns the pids still alive at the deadline (none, unless the OS refused).
    """
    start = time.monotonic()
    members = session_members(sid)
    while members:
        now = time.monotonic()
        if now - start >= grace:
            for pid in members:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        _reap(members)
        if now - start > grace + timeout:
            return members
        time.sleep(0.01)
        members = session_members(sid)
    return []
