"""Observer cost: the CPU cpviz itself burns (UI and probes) while nothing runs.

A real Lab (tracer, watchdog, sampler) and the CpvizApp on top of it run headless at the default
frame rate for a 10 s window; the figure is this process's CPU time over the window
(``time.process_time``, all threads) as a fraction of one core. Several windows, each on a fresh
lab and app; the median is reported.

Baseline in the same run: an idle child process (just sleeping) reports its own
``process_time`` over the very same windows, and that is subtracted. The split is reported too:
a Lab without the app over one window (``probes_only``), so the UI's share is the difference.

Headless mode skips Textual's last step (turning the composed frame into terminal escapes and
writing them), so a real terminal costs a little more than this figure.

    python bench/observer_cost.py [--runs N] [--window S] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from _common import leftovers

from cpviz.agent.lab import Lab, LabController
from cpviz.engine.source import LiveSource

TARGET = 0.05
SIZE = (120, 40)
#: Time for the app to mount and draw its first frames before the window opens.
SETTLE_S = 1.0

_IDLE_CHILD = (
    "import sys, time\n"
    "for _ in sys.stdin:\n"
    "    print(repr(time.process_time()), flush=True)\n"
)


class IdleProcess:
    """A sleeping child process that reports its own CPU time when asked."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _IDLE_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.cpu()  # wait until it is up and past its start-up work

    def cpu(self) -> float:
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


class Window:
    """CPU seconds of this process and of the idle child over one stretch of wall time."""

    def __init__(self, idle: IdleProcess) -> None:
        self.idle = idle
        self.cpu_s = self.idle_cpu_s = self.wall_s = 0.0

    def __enter__(self) -> Window:
        self._idle0 = self.idle.cpu()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0
        self.idle_cpu_s = self.idle.cpu() - self._idle0

    @property
    def net(self) -> float:
        """Fraction of one core used beyond the idle process's."""
        return (self.cpu_s - self.idle_cpu_s) / self.wall_s


def probes_only(idle: IdleProcess, window_s: float) -> Window:
    """A Lab with every probe on and no app: what the engine costs by itself."""
    lab = Lab().start()
    try:
        time.sleep(SETTLE_S)
        with Window(idle) as w:
            time.sleep(window_s)
    finally:
        lab.close()
    return w


def with_app(idle: IdleProcess, window_s: float) -> tuple[Window, float | None]:
    """The app on a fresh Lab, headless; returns the window and the frame rate it kept."""
    from cpviz.app import CpvizApp  # the UI is imported only when it is measured

    lab = Lab().start()
    frames = [0]
    try:
        app = CpvizApp(LiveSource(lab.stream, lab.cores), LabController(lab))
        counted = _count_frames(app, frames)

        async def drive() -> tuple[Window, int]:
            async with app.run_test(headless=True, size=SIZE):
                await asyncio.sleep(SETTLE_S)
                first = frames[0]
                with Window(idle) as w:
                    await asyncio.sleep(window_s)
                return w, frames[0] - first

        window, drawn = asyncio.run(drive())
    finally:
        lab.close()
    return window, (drawn / window.wall_s if counted else None)


def _count_frames(app: Any, frames: list[int]) -> bool:
    """Count the app's frame ticks, if it still has a ``_frame`` method to wrap."""
    original = getattr(app, "_frame", None)
    if not callable(original):
        return False

    def frame() -> None:
        frames[0] += 1
        original()

    app._frame = frame
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU cpviz uses while idle")
    parser.add_argument("--runs", type=int, default=3, help="app windows (median taken)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--quick", action="store_true", help="3 s windows")
    args = parser.parse_args()
    window_s = 3.0 if args.quick else args.window
    runs = max(1, args.runs)

    idle = IdleProcess()
    try:
        probes = probes_only(idle, window_s)
        print(
            f"probes only: {probes.cpu_s:.3f} s cpu in {probes.wall_s:.1f} s "
            f"(idle process {probes.idle_cpu_s:.4f} s) -> {probes.net:.4f} of a core"
        )
        apps: list[Window] = []
        fps: list[float] = []
        for i in range(runs):
            w, rate = with_app(idle, window_s)
            apps.append(w)
            if rate is not None:
                fps.append(rate)
            shown = f", {rate:.1f} frames/s" if rate is not None else ""
            print(
                f"app {i + 1}/{runs}: {w.cpu_s:.3f} s cpu in {w.wall_s:.1f} s "
                f"(idle process {w.idle_cpu_s:.4f} s) -> {w.net:.4f} of a core{shown}"
            )
    finally:
        idle.close()

    left = leftovers()
    if left:
        print(f"WARNING: still alive after close: {', '.join(left)}")
    value = statistics.median(w.net for w in apps)
    print(
        f"observer cost: {value:.4f} of one core (probes {probes.net:.4f}, "
        f"UI about {value - probes.net:.4f}; target <= {TARGET})"
    )
    result: dict[str, object] = {
        "metric": "observer_cost",
        "value": round(value, 4),
        "unit": "cores",
        "target": TARGET,
        "better": "lower",
        "runs": runs,
        "window_s": window_s,
        "probes_only": round(probes.net, 4),
        "ui_share": round(value - probes.net, 4),
        "idle_baseline": round(statistics.median(w.idle_cpu_s / w.wall_s for w in apps), 5),
        "python": platform.python_version(),
    }
    if fps:
        result["frames_per_s"] = round(statistics.median(fps), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
