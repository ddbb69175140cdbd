"""What the benchmark scripts share."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import psutil

#: The step-heavy worst case the tracer and recording benchmarks share: many tasks that do
#: nothing but yield, so every microsecond per step shows.
TASKS = 10_000
AWAITS = 10
#: Each task runs once at start and once after each await.
EXPECTED_STEPS = TASKS * (AWAITS + 1)
#: This folder: the observed process imports bench workloads from it (see ``observed_path``).
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def window_options(doc: str | None, *, window: float, quick_window: float, what: str = "windows"
                   ) -> tuple[int, float]:
    """``--runs``, ``--window`` and ``--quick`` for a bench that measures CPU over windows:
    how many windows (or pairs of them) to take the median of, and how long each lasts."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--runs", type=int, default=5, help=f"{what} (median taken)")
    parser.add_argument("--window", type=float, default=window, help="seconds per window")
    parser.add_argument("--quick", action="store_true",
                        help=f"3 {what}, {quick_window:g} s each")
    args = parser.parse_args()
    if args.quick:
        return 3, quick_window
    return max(1, args.runs), args.window


async def _yielder() -> None:
    for _ in range(AWAITS):
        await asyncio.sleep(0)


async def step_heavy() -> None:
    """TASKS tasks each awaiting ``sleep(0)`` AWAITS times, on the running loop."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(_yielder()) for _ in range(TASKS)])


def log(*parts: object) -> None:
    """The readable report goes to stderr, so stdout ends with nothing but the JSON line."""
    print(*parts, file=sys.stderr, flush=True)


def spread(values: Sequence[float], fmt: str = ".3f") -> str:
    """``median (min–max)``: how much the runs disagreed, next to what they agreed on."""
    return (
        f"{statistics.median(values):{fmt}} "
        f"({min(values):{fmt}}–{max(values):{fmt}} over {len(values)})"
    )


def observed_path() -> None:
    """Let the observed process (``python -m cpviz.agent``) import this folder's modules.

    It inherits the environment, so a catalogue named ``"_catalogue:lab_catalogue"`` resolves
    there whatever the working directory.
    """
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if BENCH_DIR not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([BENCH_DIR, *paths])


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so that every ``finally`` still runs."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def end_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl+C: the ``finally`` blocks close what the bench started."""
    signal.signal(signal.SIGTERM, _terminate)


class IdleProcess:
    """A sleeping interpreter, the floor any Python process pays; reports its own CPU time."""

    _CODE = (
        "import sys, time\n"
        "for _ in sys.stdin:\n"
        "    print(repr(time.process_time()), flush=True)\n"
    )

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", self._CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self._proc.pid
        self.cpu()  # wait until it is up and past its start-up work

    def cpu(self) -> float:
        """Its CPU seconds so far, as it reads them itself."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        return float(self._proc.stdout.readline())

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _stray_children() -> list[str]:
    """Live descendants of this process, except multiprocessing's resource tracker (it is
    meant to outlive every pool and ends with the interpreter)."""
    out: list[str] = []
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return out
    for kid in kids:
        try:
            if kid.status() == psutil.STATUS_ZOMBIE:
                continue
            if any("resource_tracker" in part for part in kid.cmdline()):
                continue
            out.append(f"pid {kid.pid} ({' '.join(kid.cmdline())[:60]})")
        except psutil.Error:
            continue
    return out


def _session_left(sessions: Sequence[int]) -> list[str]:
    """Live processes in any of ``sessions``: an observed process leads a session of its own,
    and everything it started (workers, its resource tracker) stays in it."""
    if not sessions:
        return []
    wanted = set(sessions)
    out: list[str] = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in wanted and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"pid {proc.pid} of observed session {os.getsid(proc.pid)}")
        except (OSError, psutil.Error):
            continue
    return out


def leftovers(grace_s: float = 2.0, gone: Sequence[int] = ()) -> list[str]:
    """Threads and processes still alive; the script must leave none behind.

    AnyIO's worker threads are told to stop when the lab loop ends but nobody joins them, so
    one may still be on its way out right after ``Lab.close``: give such threads a moment.
    ``gone`` are the pids of observed processes: nothing of their sessions may be left.
    """
    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    children = [f"pid {p.pid}" for p in multiprocessing.active_children()]
    seen = set(children)
    children += _session_left(gone)
    children += [c for c in _stray_children() if c.split(" (")[0] not in seen]
    return threads + children
