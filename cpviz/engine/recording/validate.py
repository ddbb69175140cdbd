"""What a recording may hold beyond its types: ranges, the order inside an event, and caps.

The codec checks that every field has its declared type. That is not enough for a file anyone can
write: a ``NaN`` time, a time of ``1e300``, a step that ends before it starts or a header that
claims a billion cores all have the right types, and each of them used to crash ``export`` or
``screenshot``, or to make the screen allocate without end. So the reader runs every event past
:class:`Validator`, and every problem is one :class:`_Bad` naming the field and what is accepted.
Whatever passes here, the Model, the screen and the exporter can handle: the property test in
``tests/unit/test_recording_fuzz.py`` holds them to that.

The limits are generous next to any real session (a step-heavy run makes about 100,000 steps a
second; ``--record-max-mb`` stops a recording at 200 MB of JSON by default) and tight next to
what would take the machine down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    LoopLag,
    Metric,
    Observed,
    OsSamples,
    Phase,
    RunEnd,
    RunProgress,
    RunStart,
    StallEnd,
    StallStart,
    StreamGap,
    SweepPoint,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.recording.codec import _Bad
from cpviz.engine.recording.os_samples import decode_cells

#: Logical CPUs a header may claim: the core lanes draw one lane each.
MAX_CORES = 4096
#: Workloads a header may list, and modes or parameters per workload.
MAX_WORKLOADS = 100
MAX_OPTIONS = 100
#: Longest a recording may last, from the header's clock reading to its last event (a week).
MAX_SPAN_S = 7 * 24 * 3600.0
#: How long before the header's clock reading an event may have happened: a recorder attached
#: to a running lab (a talk's scene) receives a few steps that ended just before it began.
EARLY_S = 60.0
#: Highest clock reading a header may carry (the session clock counts from cpviz's start).
MAX_CLOCK_S = 1e9
#: Events (lines after the header), task spawns, runs, and loop freezes plus stalls per file.
MAX_EVENTS = 50_000_000
MAX_TASKS = 10_000_000
MAX_RUNS = 100_000
MAX_INCIDENTS = 100_000
#: Items in one list field (placements, stack frames, waiters, parameters, figures).
MAX_ITEMS = 10_000
#: Integers are 64-bit on every side that wrote them (ids, counts, line numbers).
MAX_INT = 2**63 - 1
#: Samples, and thread and process rows, in one batch of OS samples (a live batch holds about
#: ten samples of as many rows as the observed program has threads).
MAX_OS_SAMPLES = 1000
MAX_OS_ROWS = 1000


def _num(value: float) -> str:
    return "NaN" if value != value else repr(value)


class Validator:
    """Checks each event of one recording against its header; counts what has caps."""

    def __init__(self, clock_start: float, cores: int) -> None:
        #: Earliest and latest time an event may carry (the recording's possible span).
        self.lo = max(0.0, clock_start - EARLY_S)
        self.hi = clock_start + MAX_SPAN_S
        self.cores = cores
        self.events = 0
        self.tasks = 0
        self.runs = 0
        self.run_ends = 0
        self.incidents = 0
        self._checks: dict[type, Callable[[Any], None]] = {
            TaskStep: self._step,
            TaskSpawn: self._spawn,
            CoreSample: self._sample,
            IncidentStart: self._incident_start,
            IncidentEnd: self._incident_end,
            LoopLag: self._lag,
            RunStart: self._run_start,
            RunProgress: self._progress,
            RunEnd: self._run_end,
            StreamGap: self._gap,
            Metric: self._metric,
            SweepPoint: self._sweep,
            Phase: self._phase,
            StallStart: self._stall_start,
            StallEnd: self._stall_end,
            Observed: self._observed,
            OsSamples: self._os_samples,
        }

    def check(self, event: Event) -> None:
        """Raise :class:`_Bad` saying what is wrong with ``event``, if anything."""
        self.events += 1
        if self.events > MAX_EVENTS:
            raise _Bad(f"more than {MAX_EVENTS:,} events; a cpviz recording holds no more")
        check = self._checks.get(type(event))
        if check is None:
            self._other(event)
        else:
            check(event)

    # -- values ----------------------------------------------------------------------------------

    def _time(self, where: str, value: float) -> None:
        if self.lo <= value <= self.hi:
            return
        if not math.isfinite(value):
            raise _Bad(f"{where} is {_num(value)}; a time must be a finite number of seconds")
        if value < 0:
            raise _Bad(f"{where} is {_num(value)}; a time cannot be negative")
        raise _Bad(
            f"{where} is {_num(value)}, outside the span a recording can have "
            f"({self.lo:.3f} to {self.hi:.3f} s on its clock)"
        )

    @staticmethod
    def _seconds(where: str, value: float) -> None:
        """A duration: finite, not negative, at most the longest recording."""
        if 0.0 <= value <= MAX_SPAN_S:
            return
        if not math.isfinite(value):
            raise _Bad(f"{where} is {_num(value)}; a duration must be a finite number")
        raise _Bad(f"{where} is {_num(value)}; a duration is from 0 to {MAX_SPAN_S:.0f} s")

    @staticmethod
    def _finite(where: str, value: float) -> None:
        if not math.isfinite(value):
            raise _Bad(f"{where} is {_num(value)}; it must be a finite number")

    @staticmethod
    def _count(where: str, value: int) -> None:
        if not 0 <= value <= MAX_INT:
            raise _Bad(f"{where} is {value}; it counts something, so it is from 0 to 2**63-1")

    @staticmethod
    def _int(where: str, value: int) -> None:
        if not -MAX_INT <= value <= MAX_INT:
            raise _Bad(f"{where} does not fit in 64 bits")

    @staticmethod
    def _items(where: str, items: tuple[Any, ...]) -> None:
        if len(items) > MAX_ITEMS:
            raise _Bad(f"{where} has {len(items):,} items; at most {MAX_ITEMS:,}")

    def _frame(self, where: str, frame: Frame | None) -> None:
        if frame is not None:
            self._count(f"{where}.line", frame.line)

    def _cap(self, what: str, n: int, cap: int) -> None:
        if n > cap:
            raise _Bad(f"more than {cap:,} {what}; a cpviz recording holds no more")

    # -- events ----------------------------------------------------------------------------------

    def _step(self, ev: TaskStep) -> None:
        if self.lo <= ev.ready <= ev.start <= ev.end <= self.hi and -MAX_INT <= ev.task_id \
                <= MAX_INT:
            return
        self._int("TaskStep.task_id", ev.task_id)
        self._time("TaskStep.ready", ev.ready)
        self._time("TaskStep.start", ev.start)
        self._time("TaskStep.end", ev.end)
        if ev.start < ev.ready:
            raise _Bad(f"TaskStep.start ({ev.start!r}) is before its ready ({ev.ready!r})")
        raise _Bad(f"TaskStep.end ({ev.end!r}) is before its start ({ev.start!r})")

    def _spawn(self, ev: TaskSpawn) -> None:
        self.tasks += 1
        self._cap("tasks", self.tasks, MAX_TASKS)
        self._time("TaskSpawn.t", ev.t)
        self._int("TaskSpawn.task_id", ev.task_id)
        self._int("TaskSpawn.run_id", ev.run_id)
        self._int("TaskSpawn.parent_id", ev.parent_id)

    def _sample(self, ev: CoreSample) -> None:
        self._time("CoreSample.t", ev.t)
        if len(ev.percents) > self.cores:
            raise _Bad(
                f"CoreSample.percents has {len(ev.percents)} cores; the header says "
                f"{self.cores}"
            )
        for i, pct in enumerate(ev.percents):
            if not 0.0 <= pct <= 100.0:
                raise _Bad(
                    f"CoreSample.percents[{i}] is {_num(pct)}; a core is from 0 to 100% busy"
                )
        self._items("CoreSample.placements", ev.placements)
        for i, p in enumerate(ev.placements):
            where = f"CoreSample.placements[{i}]"
            self._int(f"{where}.ident", p.ident)
            if not -1 <= p.core <= MAX_INT:
                raise _Bad(f"{where}.core is {p.core}; a core is -1 (unknown) or more")
            if not 0.0 <= p.cpu_pct <= 100.0 * MAX_CORES:
                raise _Bad(f"{where}.cpu_pct is {_num(p.cpu_pct)}; from 0 to "
                           f"{100 * MAX_CORES} (% of one core)")
        self._count("CoreSample.ctx_switches", ev.ctx_switches)

    def _incident_start(self, ev: IncidentStart) -> None:
        self.incidents += 1
        self._cap("loop freezes and stalls", self.incidents, MAX_INCIDENTS)
        self._time("IncidentStart.t", ev.t)
        self._time("IncidentStart.since", ev.since)
        if ev.since > ev.t:
            raise _Bad(f"IncidentStart.since ({ev.since!r}) is after its t ({ev.t!r})")
        self._int("IncidentStart.incident_id", ev.incident_id)
        self._int("IncidentStart.task_id", ev.task_id)
        self._frame("IncidentStart.culprit", ev.culprit)
        self._items("IncidentStart.stack", ev.stack)
        for i, frame in enumerate(ev.stack):
            self._frame(f"IncidentStart.stack[{i}]", frame)

    def _incident_end(self, ev: IncidentEnd) -> None:
        self._time("IncidentEnd.t", ev.t)
        self._int("IncidentEnd.incident_id", ev.incident_id)
        self._seconds("IncidentEnd.duration_s", ev.duration_s)
        self._frame("IncidentEnd.culprit", ev.culprit)
        self._count("IncidentEnd.samples", ev.samples)

    def _lag(self, ev: LoopLag) -> None:
        self._time("LoopLag.t", ev.t)
        self._seconds("LoopLag.lag_s", ev.lag_s)

    def _run_start(self, ev: RunStart) -> None:
        self.runs += 1
        self._cap("runs", self.runs, MAX_RUNS)
        self._time("RunStart.t", ev.t)
        self._int("RunStart.run_id", ev.run_id)
        self._items("RunStart.params", ev.params)
        self._count("RunStart.total", ev.total)

    def _progress(self, ev: RunProgress) -> None:
        self._time("RunProgress.t", ev.t)
        self._int("RunProgress.run_id", ev.run_id)
        self._count("RunProgress.done", ev.done)
        self._count("RunProgress.total", ev.total)

    def _run_end(self, ev: RunEnd) -> None:
        self.run_ends += 1
        self._cap("run results", self.run_ends, MAX_RUNS)
        self._time("RunEnd.t", ev.t)
        self._int("RunEnd.run_id", ev.run_id)
        r = ev.result
        self._seconds("RunEnd.result.wall_s", r.wall_s)
        self._seconds("RunEnd.result.cpu_s", r.cpu_s)
        self._items("RunEnd.result.params", r.params)
        self._items("RunEnd.result.incidents", r.incidents)
        for i, inc in enumerate(r.incidents):
            self._finite(f"RunEnd.result.incidents[{i}].start_s", inc.start_s)
            self._seconds(f"RunEnd.result.incidents[{i}].duration_s", inc.duration_s)
            if inc.line is not None:
                self._count(f"RunEnd.result.incidents[{i}].line", inc.line)
        self._count("RunEnd.result.tasks", r.tasks)
        self._count("RunEnd.result.steps", r.steps)
        self._items("RunEnd.result.extra", r.extra)

    def _gap(self, ev: StreamGap) -> None:
        self._time("StreamGap.t", ev.t)
        self._count("StreamGap.dropped", ev.dropped)

    def _metric(self, ev: Metric) -> None:
        self._time("Metric.t", ev.t)
        self._int("Metric.run_id", ev.run_id)
        # The value is a reading: NaN or infinity is what a gauge gave, drawn as a gap.

    def _sweep(self, ev: SweepPoint) -> None:
        self._time("SweepPoint.t", ev.t)
        self._int("SweepPoint.run_id", ev.run_id)
        self._items("SweepPoint.figures", ev.figures)

    def _phase(self, ev: Phase) -> None:
        self._time("Phase.t", ev.t)
        self._time("Phase.start", ev.start)
        if ev.start > ev.t:
            raise _Bad(f"Phase.t ({ev.t!r}) is before its start ({ev.start!r})")
        self._int("Phase.run_id", ev.run_id)

    def _stall_start(self, ev: StallStart) -> None:
        self.incidents += 1
        self._cap("loop freezes and stalls", self.incidents, MAX_INCIDENTS)
        self._time("StallStart.t", ev.t)
        self._time("StallStart.since", ev.since)
        if ev.since > ev.t:
            raise _Bad(f"StallStart.since ({ev.since!r}) is after its t ({ev.t!r})")
        self._int("StallStart.run_id", ev.run_id)
        self._int("StallStart.stall_id", ev.stall_id)
        self._items("StallStart.waiters", ev.waiters)
        for i, waiter in enumerate(ev.waiters):
            self._frame(f"StallStart.waiters[{i}].frame", waiter.frame)

    def _stall_end(self, ev: StallEnd) -> None:
        self._time("StallEnd.t", ev.t)
        self._int("StallEnd.run_id", ev.run_id)
        self._int("StallEnd.stall_id", ev.stall_id)

    def _other(self, ev: Event) -> None:
        """An event type with no checks of its own yet: its time, if it has one, is still a
        time (an event type added later must not crash the reader)."""
        t = getattr(ev, "t", None)
        if isinstance(t, float):
            self._time(f"{type(ev).__name__}.t", t)

    def _observed(self, ev: Observed) -> None:
        self._time("Observed.t", ev.t)
        self._int("Observed.pid", ev.pid)
        self._int("Observed.status", ev.status)


    def _os_samples(self, ev: OsSamples) -> None:
        self._time("OsSamples.t", ev.t)
        n = len(ev.steps_us)
        if not 1 <= n <= MAX_OS_SAMPLES:
            raise _Bad(f"OsSamples.steps_us has {n} samples; from 1 to {MAX_OS_SAMPLES}")
        for i, step in enumerate(ev.steps_us):
            if not 0 <= step <= MAX_SPAN_S * 1e6:
                raise _Bad(f"OsSamples.steps_us[{i}] is {step}; a sample lasts from 0 to "
                           f"{MAX_SPAN_S * 1e6:.0f} µs")
        self._time("OsSamples.t minus its steps (its first sample's start)",
                   ev.t - sum(ev.steps_us) / 1e6)
        rows = len(ev.threads) + len(ev.processes)
        if rows > MAX_OS_ROWS:
            raise _Bad(f"OsSamples has {rows:,} rows; at most {MAX_OS_ROWS:,}")
        for field, pairs in (("threads", ev.threads), ("processes", ev.processes)):
            for i, (ident, cells) in enumerate(pairs):
                self._int(f"OsSamples.{field}[{i}][0]", ident)
                try:
                    decode_cells(cells, n)
                except ValueError as exc:
                    raise _Bad(f"OsSamples.{field}[{i}][1] {exc}") from None
        self._items("OsSamples.names", ev.names)
        for i, name in enumerate(ev.names):
            self._int(f"OsSamples.names[{i}].ident", name.ident)


def check_header_values(clock_start: float, cores: int, workloads: tuple[Any, ...]) -> None:
    """The header's ranges (its types are the codec's business)."""
    if not 1 <= cores <= MAX_CORES:
        raise _Bad(f"header.cores is {cores}; a recording is of 1 to {MAX_CORES} cores")
    if not 0.0 <= clock_start <= MAX_CLOCK_S:
        raise _Bad(
            f"header.clock_start is {_num(clock_start)}; a clock reading is from 0 to "
            f"{MAX_CLOCK_S:.0f} s"
        )
    if len(workloads) > MAX_WORKLOADS:
        raise _Bad(f"header.workloads lists {len(workloads)}; at most {MAX_WORKLOADS}")
    for i, info in enumerate(workloads):
        if len(info.modes) > MAX_OPTIONS or len(info.params) > MAX_OPTIONS:
            raise _Bad(f"header.workloads[{i}] has more than {MAX_OPTIONS} modes or parameters")
