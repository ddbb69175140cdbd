"""Core sampler: what every logical CPU did, and where the observed threads and workers ran.

It runs in the viewer and reads the observed process tree from outside, so it never takes the
observed interpreter's GIL. Per-core utilization comes from psutil (``/proc/stat`` on Linux). The
first ``cpu_percent`` call only sets psutil's baseline, so the sampler primes it and never
publishes that meaningless 0.0.

Placement: on Linux each thread's ``/proc/<pid>/task/<tid>/stat`` gives the CPU it last ran on
(field 39) and its user+system ticks (fields 14 and 15); worker processes come from psutil
(``cpu_num()`` and ``cpu_times()``). "Last ran on" is a snapshot, so a thread that migrated within
an interval is shown on the core it ended on. Where a platform cannot tell, placements are left
out quietly and the lanes show plain utilization.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from cpviz.engine import procfs
from cpviz.engine.clock import Clock
from cpviz.engine.events import CoreSample, Event, Placement, Role


def read_thread_stat(tid: int, pid: int = 0) -> tuple[int, float] | None:
    """(last CPU, CPU seconds) of thread ``tid`` of process ``pid`` (0: this one), or None
    where unavailable."""
    rest = procfs.stat_fields(f"/proc/{pid or 'self'}/task/{tid}/stat")
    if rest is None:
        return None
    try:
        ticks = int(rest[11]) + int(rest[12])
        return int(rest[36]), ticks / procfs.CLK_TCK
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Watched:
    """A thread or process the sampler should place on a core."""

    role: Role
    ident: int
    label: str
    is_process: bool = False
    #: For a thread, the process it belongs to (0: this one).
    pid: int = 0


class CoreSampler:
    """Samples at ``hz`` on its own thread and emits :class:`CoreSample` events."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        clock: Clock,
        hz: float = 10.0,
        roles: Callable[[], Iterable[Watched]] | None = None,
        ctx_pids: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        if not 0.5 <= hz <= 100:
            raise ValueError(f"sampling rate must be between 0.5 and 100 Hz, got {hz}")
        self._emit = emit
        self.clock = clock
        self.hz = hz
        self._roles = roles or (lambda: ())
        #: Processes whose context switches the lanes count (default: this one).
        self._ctx_pids = ctx_pids or (lambda: (os.getpid(),))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev_cpu: dict[tuple[bool, int], float] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._prev_ctx = 0
        self._prev_t = 0.0
        self.cores = psutil.cpu_count(logical=True) or 1

    def start(self) -> None:
        self.prime()
        self._thread = threading.Thread(target=self._run, name="cpviz-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._thread = None

    def prime(self) -> None:
        """Set psutil's and our own baselines so the first published sample is real."""
        psutil.cpu_percent(percpu=True)
        self._prev_t = self.clock.now()
        self._prev_ctx = self._ctx_switches()
        for w in self._roles():
            self._cpu_of(w)

    def _run(self) -> None:
        interval = 1.0 / self.hz
        while not self._stop.wait(interval):
            try:
                self._emit(self.sample())
            except Exception:  # a probe must never take the program down
                continue

    def _ctx_switches(self) -> int:
        total = 0
        for pid in self._ctx_pids():
            proc = self._procs.get(pid)
            with contextlib.suppress(psutil.Error):
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                total += sum(proc.num_ctx_switches())
        return total

    def _cpu_of(self, w: Watched) -> tuple[int, float] | None:
        """(core, CPU seconds so far) for a watched thread or process."""
        if not w.is_process:
            return read_thread_stat(w.ident, w.pid)
        proc = self._procs.get(w.ident)
        if proc is None:
            try:
                proc = psutil.Process(w.ident)
            except psutil.Error:
                return None
            self._procs[w.ident] = proc
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                core = proc.cpu_num() if hasattr(proc, "cpu_num") else -1
            return core, times.user + times.system
        except psutil.Error:
            self._procs.pop(w.ident, None)
            return None

    def sample(self) -> CoreSample:
        """Take one sample now (also usable without the thread, e.g. in tests)."""
        percents = tuple(float(p) for p in psutil.cpu_percent(percpu=True))
        now = self.clock.now()
        dt = max(now - self._prev_t, 1e-6)
        placements: list[Placement] = []
        seen: set[tuple[bool, int]] = set()
        for w in self._roles():
            got = self._cpu_of(w)
            if got is None:
                continue
            core, cpu_s = got
            key = (w.is_process, w.ident)
            seen.add(key)
            previous = self._prev_cpu.get(key)
            self._prev_cpu[key] = cpu_s
            if previous is None:
                continue  # first sight: no interval to measure yet
            pct = max(0.0, (cpu_s - previous) / dt * 100.0)
            placements.append(Placement(w.role, w.ident, core, round(pct, 1), w.label))
        for key in list(self._prev_cpu):
            if key not in seen:
                del self._prev_cpu[key]
        live = {ident for is_proc, ident in seen if is_proc} | set(self._ctx_pids())
        for pid in list(self._procs):
            if pid not in live:
                del self._procs[pid]
        ctx = self._ctx_switches()
        delta_ctx, self._prev_ctx = max(0, ctx - self._prev_ctx), ctx
        self._prev_t = now
        return CoreSample(now, percents, tuple(placements), delta_ctx)
