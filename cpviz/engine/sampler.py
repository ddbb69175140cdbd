"""Core sampler: what every logical CPU did, and where cpviz's own threads and workers ran.

Per-core utilization comes from psutil (``/proc/stat`` on Linux). The first ``cpu_percent`` call
only sets psutil's baseline, so the sampler primes it and never publishes that meaningless 0.0.

Placement: on Linux each thread's ``/proc/self/task/<tid>/stat`` gives the CPU it last ran on
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

from cpviz.engine.clock import Clock
from cpviz.engine.events import CoreSample, Event, Placement, Role

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_thread_stat(tid: int) -> tuple[int, float] | None:
    """(last CPU, CPU seconds) of one thread of this process, or None where unavailable."""
    try:
        with open(f"/proc/self/task/{tid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        ticks = int(rest[11]) + int(rest[12])
        return int(rest[36]), ticks / _CLK_TCK
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Watched:
    """A thread or process the sampler should place on a core."""

    role: Role
    ident: int
    label: str
    is_process: bool = False


class CoreSampler:
    """Samples at ``hz`` on its own thread and emits :class:`CoreSample` events."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        clock: Clock,
        hz: float = 10.0,
        roles: Callable[[], Iterable[Watched]] | None = None,
    ) -> None:
        if not 0.5 <= hz <= 100:
            raise ValueError(f"sampling rate must be between 0.5 and 100 Hz, got {hz}")
        self._emit = emit
        self.clock = clock
        self.hz = hz
        self._roles = roles or (lambda: ())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev_cpu: dict[tuple[bool, int], float] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._me = psutil.Process()
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
        try:
            total = sum(self._me.num_ctx_switches())
            for proc in self._procs.values():
                with contextlib.suppress(psutil.Error):
                    total += sum(proc.num_ctx_switches())
            return total
        except psutil.Error:
            return 0

    def _cpu_of(self, w: Watched) -> tuple[int, float] | None:
        """(core, CPU seconds so far) for a watched thread or process."""
        if not w.is_process:
            return read_thread_stat(w.ident)
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
        live = {ident for is_proc, ident in seen if is_proc}
        for pid in list(self._procs):
            if pid not in live:
                del self._procs[pid]
        ctx = self._ctx_switches()
        delta_ctx, self._prev_ctx = max(0, ctx - self._prev_ctx), ctx
        self._prev_t = now
        return CoreSample(now, percents, tuple(placements), delta_ctx)


def own_threads(loop_thread: Callable[[], int | None]) -> list[Watched]:
    """cpviz's threads by role: the lab loop, pool workers, the UI, probes and the HTTP server."""
    loop_tid = loop_thread()
    main_tid = threading.main_thread().native_id
    out: list[Watched] = []
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:
            continue
        name = thread.name
        role: Role
        if tid == loop_tid:
            role = "loop"
        elif name.startswith(("AnyIO worker", "cpviz worker")):
            role = "thread"
        elif name.startswith("cpviz-server"):
            role = "server"
        elif name.startswith("cpviz-"):
            role = "probe"
        elif tid == main_tid:
            role = "ui"
        else:
            role = "other"
        out.append(Watched(role, tid, name))
    return out
