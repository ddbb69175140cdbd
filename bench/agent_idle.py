"""Agent idle: what the observed process costs while its probes are on and nothing runs.

A person leaves cpviz open; the observed process (``python -m cpviz.agent``, started through
:class:`~cpviz.engine.observed.ObservedLab`) keeps its lab loop, tracer, watchdog heartbeat,
no-progress detector and streamer going. Its CPU, and that of every process it started (its
resource tracker, any pool workers), is read from outside at the start and end of each window:
psutil finds the processes and threads, and each thread's nanosecond run time comes from
``/proc/<pid>/task/<tid>/schedstat`` (psutil's own figures, in 10 ms ticks, are reported beside
as ``ticks_value``). The value is the median over several windows, as a fraction of one core,
with this process draining the stream into a Model at the screen's 25 Hz as the viewer would.

Baseline over the very same windows: a sleeping interpreter (the floor any Python process pays
here), read from outside the same way. The per-thread split (heartbeat, streamer, loop, ...) is
reported from the same readings, named from the sampler's placements.

    python bench/agent_idle.py [--runs N] [--window S] [--quick]
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections import defaultdict

import psutil
from _common import IdleProcess, end_on_sigterm, leftovers, log, spread, window_options

from cpviz.engine import procfs
from cpviz.engine.events import CoreSample, Event
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from cpviz.workloads.registry import catalogue

TARGET = 0.01
#: The screen's frame rate: how often the viewer drains.
DRAIN_HZ = 25.0
#: Time for the observed side to finish starting (imports, first thread list) before measuring.
SETTLE_S = 1.0


def _schedstat(pid: int, tid: int) -> float | None:
    """On-CPU seconds of one thread from the scheduler's own books (nanoseconds), or None."""
    books = procfs.schedstat(f"/proc/{pid}/task/{tid}/schedstat")
    return None if books is None else books[0]


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of ``pid``: the scheduler's nanosecond figure where
    Linux offers it (psutil's come in 10 ms ticks, coarse for an idle process over a few
    seconds), psutil's otherwise."""
    try:
        threads = psutil.Process(pid).threads()
    except psutil.Error:
        return {}
    out: dict[int, float] = {}
    for t in threads:
        precise = _schedstat(pid, t.id)
        out[t.id] = precise if precise is not None else t.user_time + t.system_time
    return out


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    try:
        root = psutil.Process(pid)
        return [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.Error:
        return []


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid`` and its live descendants: (sum over live threads, precise;
    the OS's per-process total in ticks, which also keeps threads that have ended)."""
    precise = ticks = 0.0
    for p in tree_pids(pid):
        precise += sum(thread_cpu(p).values())
        try:
            t = psutil.Process(p).cpu_times()
        except psutil.Error:
            continue
        ticks += t.user + t.system
    return precise, ticks


class Names:
    """Thread names of the observed process, from the sampler's placements in the stream."""

    def __init__(self) -> None:
        self.by_tid: dict[int, str] = {}

    def __call__(self, batch: list[Event]) -> None:
        for ev in batch:
            if type(ev) is CoreSample:
                for p in ev.placements:
                    if p.label:
                        self.by_tid[p.ident] = p.label


class Reading:
    """One window's figures, each a fraction of one core."""

    def __init__(self, observed: float, observed_ticks: float, idle: float) -> None:
        self.observed = observed
        self.observed_ticks = observed_ticks
        self.idle = idle


def window(lab: ObservedLab, idle: IdleProcess, model: Model, seconds: float, names: Names,
           threads: defaultdict[str, list[float]]) -> Reading:
    """One window of the observed tree and the idle interpreter, the viewer draining as usual."""
    pid = lab.pid
    if pid is None:
        sys.exit("FAIL: the observed process is gone")
    threads0 = thread_cpu(pid)
    idle0, tree0, wall0 = tree_cpu(idle.pid), tree_cpu(pid), time.perf_counter()
    while time.perf_counter() - wall0 < seconds:
        time.sleep(1 / DRAIN_HZ)
        model.apply(lab.stream.drain())
    idle1, tree1, wall1 = tree_cpu(idle.pid), tree_cpu(pid), time.perf_counter()
    threads1 = thread_cpu(pid)
    wall = wall1 - wall0
    for tid, cpu in threads1.items():
        threads[names.by_tid.get(tid, f"thread {tid}")].append(
            (cpu - threads0.get(tid, 0.0)) / wall
        )
    return Reading((tree1[0] - tree0[0]) / wall, (tree1[1] - tree0[1]) / wall,
                   (idle1[0] - idle0[0]) / wall)


def main() -> None:
    runs, seconds = window_options(__doc__, window=10.0, quick_window=3.0)
    end_on_sigterm()

    began = time.perf_counter()
    observed: list[float] = []
    floor: list[float] = []
    ticks: list[float] = []
    per_thread: defaultdict[str, list[float]] = defaultdict(list)
    lab = ObservedLab(catalogue(), output=sys.stderr)
    names = Names()
    lab.stream.add_tap(names)
    pids: list[int] = []
    idle: IdleProcess | None = None
    try:
        idle = IdleProcess()
        lab.start()
        if lab.pid is not None:
            pids.append(lab.pid)
        model = Model(cores=lab.cores)
        settle = time.perf_counter()
        while time.perf_counter() - settle < SETTLE_S:
            time.sleep(1 / DRAIN_HZ)
            model.apply(lab.stream.drain())
        for i in range(runs):
            r = window(lab, idle, model, seconds, names, per_thread)
            observed.append(r.observed)
            ticks.append(r.observed_ticks)
            floor.append(r.idle)
            log(f"window {i + 1}/{runs}: observed process {r.observed:.4f} of a core "
                f"({r.observed_ticks:.4f} in the OS's 10 ms ticks), idle interpreter "
                f"{r.idle:.4f}")
    finally:
        lab.close()
        if idle is not None:
            idle.close()

    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    value = statistics.median(observed)
    base = statistics.median(floor)
    split = {name: statistics.median(v) for name, v in per_thread.items()}
    log(f"observed process, idle with probes on: {spread(observed, '.4f')} of a core")
    log(f"idle interpreter over the same windows: {spread(floor, '.4f')}")
    log("by thread: " + ", ".join(
        f"{name} {cpu:.4f}" for name, cpu in sorted(split.items(), key=lambda kv: -kv[1])
    ))
    log(f"agent idle: {value:.4f} of one core (target <= {TARGET}); "
        f"took {time.perf_counter() - began:.0f} s")
    print(json.dumps({
        "metric": "agent_idle",
        "value": round(value, 4),
        "unit": "cores",
        "target": TARGET,
        "better": "lower",
        "runs": runs,
        "window_s": seconds,
        "min": round(min(observed), 4),
        "max": round(max(observed), 4),
        "ticks_value": round(statistics.median(ticks), 4),
        "idle_interpreter": round(base, 4),
        "net_of_floor": round(value - base, 4),
        "threads": {name: round(cpu, 4) for name, cpu in split.items() if cpu >= 0.0005},
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
