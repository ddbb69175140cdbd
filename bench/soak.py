"""Soak: the real screen on a busy scene for minutes; its memory and CPU must stay flat.

A person leaves cpviz open during a talk or a long run. Nothing the viewer keeps may grow with
the time it has been open (the Model, the gauge series, incident and run lists, the recorder are
all capped) and no frame may cost more as the run goes on. Before the caps, a 13-minute soak of
this very scene grew from 73 to 103 MB and still climbed, and the screen's CPU doubled in the
first 3.5 minutes (27% to 48-60% of a core) as 20 Hz gauges filled 4096-reading series that
every frame read again.

The script starts ``cpviz --start pipeline:steady --set messages=1000000`` (100 messages a
second, live gauges, a task per message) in a real pseudo-terminal at 120x40, exactly as a
person would, and reads from outside every ``--every`` seconds (default 10): the viewer's
resident memory and CPU time (``cpviz`` itself: screen, Model, sampler), and the observed
process's (``python -m cpviz.agent`` and its workers) resident memory. At the end it types
``q`` and checks that nothing is left.

Figures:
- RSS slope: least-squares MB per minute of the viewer's RSS over the second half of the run,
  once every cap has filled (the Model's 60 s of history, the line caches) and the allocator
  has settled; the slope from the end of the first minute is reported beside it
  (``slope_from_minute_1``). Target: <= 0.2 MB/min.
- CPU ratio: the viewer's CPU in the last minute over its CPU in the second minute (for runs
  shorter than 4 minutes, quarters of the run stand in for minutes). Target: <= 1.2.
- The viewer's busiest segment as a fraction of one core (the issue's bound: 0.15).

    python bench/soak.py [--minutes N] [--every S] [--quick]   # --quick: 2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time

import psutil
from _common import end_on_sigterm, log

RSS_TARGET = 0.2
CPU_TARGET = 1.2
CORE_BOUND = 0.15
COMMAND = ("--start", "pipeline:steady", "--set", "messages=1000000")


class Pty:
    """A 120x40 pseudo-terminal whose output is read away as it comes (a full one blocks)."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.seen = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                self.seen += len(chunk)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def observed_rss(viewer: psutil.Process) -> float:
    """Resident MB of the observed process and everything it started."""
    total = 0.0
    try:
        kids = viewer.children(recursive=True)
    except psutil.Error:
        return 0.0
    for kid in kids:
        with contextlib.suppress(psutil.Error):
            total += kid.memory_info().rss
    return total / 1e6


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def cpu_between(samples: list[tuple[float, float, float, float]], t0: float, t1: float
                ) -> float:
    """The viewer's CPU seconds per second between elapsed times t0 and t1 (nearest samples)."""
    a = min(samples, key=lambda s: abs(s[0] - t0))
    b = min(samples, key=lambda s: abs(s[0] - t1))
    return (b[2] - a[2]) / (b[0] - a[0]) if b[0] > a[0] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between readings")
    parser.add_argument("--quick", action="store_true", help="2 minutes")
    args = parser.parse_args()
    minutes = 2.0 if args.quick else max(1.0, args.minutes)
    every = max(1.0, args.every if not args.quick else min(args.every, 5.0))
    end_on_sigterm()

    term = Pty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    proc = subprocess.Popen([sys.executable, "-m", "cpviz", *COMMAND], stdin=term.slave,
                            stdout=term.slave, stderr=term.slave, env=env,
                            start_new_session=True)
    viewer = psutil.Process(proc.pid)
    #: (elapsed s, viewer RSS MB, viewer CPU s, observed RSS MB)
    samples: list[tuple[float, float, float, float]] = []
    everyone: list[psutil.Process] = []
    began = time.monotonic()
    try:
        time.sleep(3.0)  # the screen opens and the run starts
        if proc.poll() is not None:
            sys.exit(f"FAIL: cpviz exited at once with {proc.returncode}")
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) <= minutes * 60 + 0.5:
            cpu = viewer.cpu_times()
            samples.append((elapsed, viewer.memory_info().rss / 1e6, cpu.user + cpu.system,
                            observed_rss(viewer)))
            e, rss, _, seen = samples[-1]
            log(f"{e / 60:5.1f} min: viewer {rss:6.1f} MB, observed {seen:6.1f} MB, "
                f"viewer cpu {samples[-1][2]:7.1f} s")
            if proc.poll() is not None:
                sys.exit(f"FAIL: cpviz ended during the soak with {proc.returncode}")
            time.sleep(max(0.0, (len(samples) * every) - (time.monotonic() - start)))
        everyone = viewer.children(recursive=True)
        os.write(term.master, b"q")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        term.close()
    _, alive = psutil.wait_procs(everyone, timeout=3)
    if alive:
        sys.exit(f"FAIL: left running after q: {[p.pid for p in alive]}")
    if proc.returncode != 0:
        sys.exit(f"FAIL: cpviz exited with {proc.returncode} after q")

    duration = samples[-1][0]
    segment = 60.0 if duration >= 240 else duration / 4
    rss_slope = slope([(s[0] / 60, s[1]) for s in samples if s[0] >= duration / 2])
    early_slope = slope([(s[0] / 60, s[1]) for s in samples if s[0] >= min(60.0, duration / 2)])
    second = cpu_between(samples, segment, 2 * segment)
    last = cpu_between(samples, duration - segment, duration)
    ratio = last / second if second > 0 else float("inf")
    per_segment = [cpu_between(samples, t, t + segment)
                   for t in range(0, int(duration - segment) + 1, max(1, int(segment)))]
    busiest = max(per_segment) if per_segment else 0.0
    observed_slope = slope([(s[0] / 60, s[3]) for s in samples if s[0] >= duration / 2])
    log(f"viewer RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MB, slope {rss_slope:+.3f} "
        f"MB/min over the second half (target <= {RSS_TARGET}), {early_slope:+.3f} from minute "
        f"1; observed process RSS "
        f"{samples[0][3]:.1f} -> {samples[-1][3]:.1f} MB ({observed_slope:+.3f} MB/min)")
    log(f"viewer CPU: {second:.3f} of a core in segment 2, {last:.3f} in the last: ratio "
        f"{ratio:.2f} (target <= {CPU_TARGET}); busiest segment {busiest:.3f} of a core "
        f"(bound {CORE_BOUND}); took {time.monotonic() - began:.0f} s")
    print(json.dumps({
        "metric": "soak_rss_slope",
        "value": round(rss_slope, 3),
        "unit": "MB/min",
        "target": RSS_TARGET,
        "better": "lower",
        "slope_from_minute_1": round(early_slope, 3),
        "cpu_ratio": round(ratio, 3),
        "cpu_ratio_target": CPU_TARGET,
        "viewer_core_second_segment": round(second, 3),
        "viewer_core_last_segment": round(last, 3),
        "viewer_core_busiest": round(busiest, 3),
        "viewer_core_bound": CORE_BOUND,
        "viewer_rss_mb": [round(samples[0][1], 1), round(samples[-1][1], 1)],
        "observed_rss_mb": [round(samples[0][3], 1), round(samples[-1][3], 1)],
        "observed_rss_slope": round(observed_slope, 3),
        "segment_s": round(segment, 1),
        "minutes": round(duration / 60, 2),
        "readings": len(samples),
        "command": "cpviz " + " ".join(COMMAND),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
