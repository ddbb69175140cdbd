"""Observer cost: the CPU the viewer process (cpviz's screen) burns while nothing runs.

The viewer is what ``cpviz`` runs in the person's terminal: the CpvizApp at its default 25
frames/s on top of an :class:`~cpviz.engine.observed.ObservedLab`, which reads the observed
process's channel on a thread and samples the cores and the observed threads from outside. The
lab and its probes live in the observed process and are not counted here (``agent_idle.py``
measures them). The figure is this process's own CPU over a window (``time.process_time``: every
thread of this process, none of its children) as a fraction of one core; the app runs headless
at 120x40, several windows, each on a fresh observed process and app, median reported.

Baseline in the same run, alternating with the app windows: the same viewer process with the
ObservedLab started (channel reader, core sampler) but no app, so nothing draws and nothing
drains (``no_screen``): the floor the screen stands on. The ratio app / floor is reported, and
the difference as ``screen_share``. A bare window with nothing started at all comes first
(``bare``), the interpreter's own floor.

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
import sys
import time
from typing import Any

from _common import end_on_sigterm, leftovers, log, spread

from cpviz.engine.observed import ObservedController, ObservedLab
from cpviz.engine.source import LiveSource
from cpviz.workloads.registry import catalogue

TARGET = 0.03
SIZE = (120, 40)
#: Time for the observed side to start and the app to draw its first frames before a window.
SETTLE_S = 1.0


class Window:
    """This process's CPU seconds over one stretch of wall time."""

    def __init__(self) -> None:
        self.cpu_s = self.wall_s = 0.0

    def __enter__(self) -> Window:
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0

    @property
    def cores(self) -> float:
        """Fraction of one core this process used."""
        return self.cpu_s / self.wall_s


def bare(window_s: float) -> Window:
    """Nothing started: what an interpreter that only sleeps costs."""
    with Window() as w:
        time.sleep(window_s)
    return w


def no_screen(window_s: float, pids: list[int]) -> Window:
    """An ObservedLab with every probe on and no app: the viewer's floor."""
    lab = ObservedLab(catalogue(), output=sys.stderr)
    try:
        lab.start()
        if lab.pid is not None:
            pids.append(lab.pid)
        time.sleep(SETTLE_S)
        with Window() as w:
            time.sleep(window_s)
    finally:
        lab.close()
    return w


def with_app(window_s: float, pids: list[int]) -> tuple[Window, float | None]:
    """The app on a fresh ObservedLab, headless; the window and the frame rate it kept."""
    from cpviz.app import CpvizApp  # the UI is imported only when it is measured

    lab = ObservedLab(catalogue(), output=sys.stderr)
    frames = [0]
    try:
        lab.start()
        if lab.pid is not None:
            pids.append(lab.pid)
        app = CpvizApp(LiveSource(lab.stream, lab.cores), ObservedController(lab))
        counted = _count_frames(app, frames)

        async def drive() -> tuple[Window, int]:
            async with app.run_test(headless=True, size=SIZE):
                await asyncio.sleep(SETTLE_S)
                first = frames[0]
                with Window() as w:
                    await asyncio.sleep(window_s)
                return w, frames[0] - first

        window, drawn = asyncio.run(drive())
    finally:
        lab.close()  # the app closes it on unmount too; closing twice is fine
    return window, (drawn / window.wall_s if counted else None)


def _count_frames(app: Any, frames: list[int]) -> bool:
    """Count the app's frame ticks, if it still has a ``_frame`` method to wrap."""
    original = getattr(app, "_frame", None)
    if not callable(original):
        return False

    def frame(*args: Any, **kwargs: Any) -> None:
        frames[0] += 1
        original(*args, **kwargs)

    app._frame = frame
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="windows of each kind (median)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--quick", action="store_true", help="3 s windows")
    args = parser.parse_args()
    window_s = 3.0 if args.quick else args.window
    runs = max(1, args.runs)
    end_on_sigterm()

    began = time.perf_counter()
    pids: list[int] = []
    floor = bare(min(window_s, 3.0))
    log(f"bare interpreter: {floor.cores:.4f} of a core")
    apps: list[Window] = []
    bases: list[Window] = []
    fps: list[float] = []
    for i in range(runs):
        order = ("app", "base") if i % 2 == 0 else ("base", "app")
        for kind in order:
            if kind == "base":
                bases.append(no_screen(window_s, pids))
                continue
            w, rate = with_app(window_s, pids)
            apps.append(w)
            if rate is not None:
                fps.append(rate)
        shown = f", {fps[-1]:.1f} frames/s" if fps else ""
        log(
            f"window {i + 1}/{runs}: app {apps[-1].cores:.4f} of a core{shown}; "
            f"no screen {bases[-1].cores:.4f}"
        )

    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    app_cores = [w.cores for w in apps]
    base_cores = [w.cores for w in bases]
    value = statistics.median(app_cores)
    base = statistics.median(base_cores)
    log(f"viewer with the app: {spread(app_cores, '.4f')} of a core")
    log(f"viewer without the app: {spread(base_cores, '.4f')} of a core")
    log(
        f"observer cost: {value:.4f} of one core (no screen {base:.4f}, the screen about "
        f"{value - base:.4f}; {value / base:.1f}x; target <= {TARGET}); "
        f"took {time.perf_counter() - began:.0f} s"
    )
    result: dict[str, object] = {
        "metric": "observer_cost",
        "value": round(value, 4),
        "unit": "cores",
        "target": TARGET,
        "better": "lower",
        "clock": "process_time (viewer process only)",
        "runs": runs,
        "window_s": window_s,
        "min": round(min(app_cores), 4),
        "max": round(max(app_cores), 4),
        "no_screen": round(base, 4),
        "ratio_to_no_screen": round(value / base, 2) if base > 0 else None,
        "screen_share": round(value - base, 4),
        "bare": round(floor.cores, 5),
        "python": platform.python_version(),
    }
    if fps:
        result["frames_per_s"] = round(statistics.median(fps), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
