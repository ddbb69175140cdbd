"""The Model folds the event stream into what the views draw.

It is fed the same way live and in replay (``apply(events)``), keeps bounded history, and answers
questions in the shape widgets need: "what state was task X in over each of these N columns?",
"how many tasks ran / were ready / waited in each column?", "how busy was core C, and whose work
was it?". It never touches a widget and never reads a clock: time comes in through the events and
through the window the caller asks about.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
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
    Output,
    Phase,
    Role,
    RunEnd,
    RunProgress,
    RunResult,
    RunStart,
    StallEnd,
    StallStart,
    StreamGap,
    SweepPoint,
    TaskSpawn,
    TaskStep,
    Waiter,
)

#: Lines of the observed program's own output the Model keeps (the output pane's history).
OUTPUT_LINES = 500
#: Readings kept per gauge series: the 60 s of history the screen can show, at the lab's 20 Hz.
SERIES_LEN = 1280
#: Gauges kept per run, and sweep points and phases per run: the screen has lines for fewer.
MAX_SERIES = 32
MAX_POINTS = 1000
#: Core samples kept, whatever their times say (the history at the fastest sampling, 100 Hz).
MAX_SAMPLES = 6000
#: Seconds a core sample stands for when no sample came before it (the sampler's 10 Hz), and
#: at most (a sampler that stalled says nothing about the time before the stall).
DEFAULT_SAMPLE_SPAN = 0.1
MAX_SAMPLE_SPAN = 1.0
#: Task steps kept across every task; past it, each task keeps only its latest steps.
MAX_STEPS = 400_000
#: Runs (with their gauges, points and phases), loop freezes and stalls kept, newest last.
MAX_RUNS = 50
MAX_INCIDENTS = 200
#: Tasks followed for their run's step count once their rows are gone (the oldest go first).
MAX_TRACKED = 100_000
#: Tasks kept (their rows and steps), alive or within history_s of their exit.
MAX_TASKS = 10_000
#: Task events kept in the journal views fold from (a view further behind starts afresh).
JOURNAL_LEN = 8192
#: Journal entry kinds: a task was spawned at ``a``; it stepped (ready ``a``, ran ``b``..``c``);
#: its last step (the same, and it exited at ``c``).
SPAWN, STEP, FINAL = 0, 1, 2
#: Name prefixes of cpviz's own tasks (the lab's dispatcher, its pool helpers): rows hidden
#: until the person asks for them. Runs' root tasks are named ``workload:mode``.
OWN_PREFIXES = ("cpviz.", "cpviz:")


def is_own(name: str) -> bool:
    """Whether a task named ``name`` is cpviz's own rather than the observed program's."""
    return name.startswith(OWN_PREFIXES)


def _step_end(step: tuple[float, float, float]) -> float:
    return step[2]


class State(IntEnum):
    """What a task was doing in a slice of time; higher values win when a slice holds several."""

    NONE = 0
    WAITING = 1
    #: Ran, but for less than half of the slice: a short step in a wide column.
    RAN = 2
    READY = 3
    FROZEN = 4
    RUNNING = 5


@dataclass(slots=True)
class TaskInfo:
    """What the Model keeps about one task."""

    task_id: int
    name: str
    run_id: int
    parent_id: int
    spawn: float
    seq: int
    exit: float | None = None
    nsteps: int = 0
    #: Recent steps as (ready, start, end), in start order; old ones are trimmed.
    steps: list[tuple[float, float, float]] = field(default_factory=list)
    #: cpviz's own task (see is_own), shown only on request.
    own: bool = False


@dataclass(slots=True)
class IncidentView:
    incident_id: int
    since: float
    detected: float
    culprit: Frame | None
    blocking_call: str | None
    task_id: int
    stack: tuple[Frame, ...]
    end: float | None = None
    #: Why it froze ("" where nobody could say), the split, and what was behind it.
    cause: str = ""
    shares: tuple[tuple[str, float], ...] = ()
    cause_detail: str = ""

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.since


@dataclass(slots=True)
class StallView:
    """A no-progress alarm (a deadlock, when nothing will ever wake the waiters)."""

    stall_id: int
    run_id: int
    since: float
    detected: float
    waiters: tuple[Waiter, ...]
    end: float | None = None


@dataclass(slots=True)
class RunView:
    run_id: int
    workload: str
    mode: str
    params: tuple[tuple[str, Any], ...]
    start: float
    total: int
    done: int = 0
    end: float | None = None
    result: RunResult | None = None


@dataclass(slots=True)
class CoreColumn:
    """One column of a core lane."""

    pct: float | None
    role: Role | None


class Model:
    """Folds events; all queries take the time window explicitly."""

    def __init__(
        self,
        cores: int,
        history_s: float = 60.0,
        max_tasks: int = MAX_TASKS,
        steps_per_task: int = 512,
        max_results: int = 20,
    ) -> None:
        self.cores = cores
        self.history_s = history_s
        self.max_tasks = max_tasks
        self.steps_per_task = steps_per_task
        #: Bumped whenever anything a view draws may have changed.
        self.version = 0
        #: Narrower versions, so a view redraws only when its own data moved: tasks and their
        #: steps (spawn, step, exit, pruning), incidents (open, close, dropped), runs (start,
        #: progress, end, dropped). ``version`` alone bumps on every batch, samples included.
        self.tasks_version = 0
        self.incidents_version = 0
        self.runs_version = 0
        #: Latest time any event carried.
        self.latest = 0.0
        self.samples: deque[CoreSample] = deque()
        self._dominant: deque[tuple[Role | None, ...]] = deque()
        self.tasks: dict[int, TaskInfo] = {}
        self._seq = 0
        #: Exited tasks in exit order, as (exit, seq, task id), for pruning without a scan.
        self._exits: deque[tuple[float, int, int]] = deque()
        #: Task events as (kind, task id, a, b, c), see SPAWN; ``journal_end`` counts every
        #: entry ever made, so a view knows what it has folded and whether it fell behind.
        self.journal: deque[tuple[int, int, float, float, float]] = deque(maxlen=JOURNAL_LEN)
        self.journal_end = 0
        #: Bumped when tasks leave other than by exiting within the window (pruned by a cap).
        self.tasks_dropped = 0
        self.incidents: list[IncidentView] = []
        self.lag_s = 0.0
        self.lag_at = 0.0
        self.runs: dict[int, RunView] = {}
        self.results: deque[RunResult] = deque(maxlen=max_results)
        self.dropped = 0
        self.ctx_switches_per_s = 0.0
        # Tasks and steps traced per run, counted whatever order spawns and RunStart arrive in.
        self._run_tasks: dict[int, int] = {}
        self._run_steps: dict[int, int] = {}
        #: Run of every live task of a run (popped at its last step), so steps are counted for
        #: their run even after the task's row was pruned from the screen's rows.
        self._task_run: dict[int, int] = {}
        #: Bumped when a run's measured figures (gauges, sweep points, phases, stalls) change.
        self.measures_version = 0
        #: Gauge readings and reported figures per run: name -> (t, value) series.
        self.metrics: dict[int, dict[str, deque[tuple[float, float]]]] = {}
        #: Sweep points per run, in the order they were measured.
        self.sweeps: dict[int, list[SweepPoint]] = {}
        #: Timed phases per run (e.g. process-pool start-up).
        self.phases: dict[int, list[Phase]] = {}
        self.stalls: list[StallView] = []
        #: The observed process's starts and ends, newest last (few: one per restart).
        self.observed: deque[Observed] = deque(maxlen=50)
        #: The program's own output, its last OUTPUT_LINES lines, and a version for the pane.
        self.output: deque[Output] = deque(maxlen=OUTPUT_LINES)
        self.output_version = 0

    def reset(self) -> None:
        """Forget everything folded so far (a replay seeking backwards folds again from 0).

        Versions keep counting up rather than starting over, so a view's cached lines, keyed
        on versions, can never be mistaken for lines of the new history.
        """
        versions = (self.version, self.tasks_version, self.incidents_version,
                    self.runs_version, self.measures_version)
        self.__init__(self.cores, self.history_s, self.max_tasks,  # type: ignore[misc]
                      self.steps_per_task, self.results.maxlen or 20)
        (self.version, self.tasks_version, self.incidents_version, self.runs_version,
         self.measures_version) = (v + 1 for v in versions)

    # -- folding --------------------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> None:
        changed = tasks_changed = incidents_changed = runs_changed = measures_changed = False
        tasks = self.tasks
        for ev in events:
            changed = True
            kind = type(ev)
            if kind is TaskStep:
                assert isinstance(ev, TaskStep)
                # Counted for its run whether or not the screen still keeps the task's row.
                run_id = (self._task_run.pop(ev.task_id, 0) if ev.final
                          else self._task_run.get(ev.task_id, 0))
                if run_id:
                    self._run_steps[run_id] = self._run_steps.get(run_id, 0) + 1
                info = tasks.get(ev.task_id)
                if info is None:
                    continue
                tasks_changed = True
                info.steps.append((ev.ready, ev.start, ev.end))
                info.nsteps += 1
                if len(info.steps) > 2 * self.steps_per_task:
                    del info.steps[: self.steps_per_task]
                self.journal.append((FINAL if ev.final else STEP, ev.task_id, ev.ready,
                                     ev.start, ev.end))
                self.journal_end += 1
                if ev.final and info.exit is None:
                    info.exit = ev.end
                    self._exits.append((ev.end, info.seq, ev.task_id))
                if ev.end > self.latest:
                    self.latest = ev.end
            elif kind is TaskSpawn:
                assert isinstance(ev, TaskSpawn)
                tasks_changed = True
                self._seq += 1
                tasks.pop(ev.task_id, None)  # an id can be reused once its task is gone
                tasks[ev.task_id] = TaskInfo(
                    ev.task_id, ev.name, ev.run_id, ev.parent_id, ev.t, self._seq,
                    own=is_own(ev.name),
                )
                self.journal.append((SPAWN, ev.task_id, ev.t, ev.t, ev.t))
                self.journal_end += 1
                if ev.run_id:
                    self._run_tasks[ev.run_id] = self._run_tasks.get(ev.run_id, 0) + 1
                    self._task_run[ev.task_id] = ev.run_id
                self._note(ev.t)
            elif kind is CoreSample:
                assert isinstance(ev, CoreSample)
                self._add_sample(ev)
            elif kind is IncidentStart:
                assert isinstance(ev, IncidentStart)
                incidents_changed = True
                self.incidents.append(
                    IncidentView(ev.incident_id, ev.since, ev.t, ev.culprit, ev.blocking_call,
                                 ev.task_id, ev.stack, None, ev.cause, ev.shares,
                                 ev.cause_detail)
                )
                self._note(ev.t)
            elif kind is IncidentEnd:
                assert isinstance(ev, IncidentEnd)
                incidents_changed = True
                for inc in reversed(self.incidents):
                    if inc.incident_id == ev.incident_id:
                        inc.end = inc.since + ev.duration_s
                        if ev.culprit is not None:
                            # Most of the freeze was spent elsewhere than the first snapshot.
                            inc.culprit, inc.blocking_call = ev.culprit, ev.blocking_call
                        if ev.cause:
                            inc.cause, inc.shares = ev.cause, ev.shares
                            inc.cause_detail = ev.cause_detail
                        break
                self._note(ev.t)
            elif kind is LoopLag:
                assert isinstance(ev, LoopLag)
                self.lag_s, self.lag_at = ev.lag_s, ev.t
                self._note(ev.t)
            elif kind is RunStart:
                assert isinstance(ev, RunStart)
                runs_changed = True
                self.runs[ev.run_id] = RunView(
                    ev.run_id, ev.workload, ev.mode, ev.params, ev.t, ev.total
                )
                self._note(ev.t)
            elif kind is RunProgress:
                assert isinstance(ev, RunProgress)
                runs_changed = True
                run = self.runs.get(ev.run_id)
                if run is not None:
                    run.done, run.total = ev.done, ev.total
                self._note(ev.t)
            elif kind is RunEnd:
                assert isinstance(ev, RunEnd)
                runs_changed = True
                run = self.runs.get(ev.run_id)
                result = ev.result
                result = dataclasses.replace(
                    result,
                    tasks=self._run_tasks.get(ev.run_id, 0),
                    steps=self._run_steps.get(ev.run_id, 0),
                )
                if run is not None:
                    run.end = ev.t
                    run.result = result
                self.results.append(result)
                self._note(ev.t)
            elif kind is Metric:
                assert isinstance(ev, Metric)
                measures_changed = True
                series = self.metrics.setdefault(ev.run_id, {})
                line = series.get(ev.name)
                if line is None:
                    if len(series) >= MAX_SERIES:
                        continue
                    line = series[ev.name] = deque(maxlen=SERIES_LEN)
                line.append((ev.t, ev.value))
                self._note(ev.t)
            elif kind is SweepPoint:
                assert isinstance(ev, SweepPoint)
                measures_changed = True
                points = self.sweeps.setdefault(ev.run_id, [])
                if len(points) < MAX_POINTS:
                    points.append(ev)
                self._note(ev.t)
            elif kind is Phase:
                assert isinstance(ev, Phase)
                measures_changed = True
                phases = self.phases.setdefault(ev.run_id, [])
                if len(phases) < MAX_POINTS:
                    phases.append(ev)
                self._note(ev.t)
            elif kind is StallStart:
                assert isinstance(ev, StallStart)
                measures_changed = True
                self.stalls.append(StallView(ev.stall_id, ev.run_id, ev.since, ev.t, ev.waiters))
                self._note(ev.t)
            elif kind is StallEnd:
                assert isinstance(ev, StallEnd)
                measures_changed = True
                for stall in reversed(self.stalls):
                    if stall.stall_id == ev.stall_id:
                        stall.end = ev.t
                        break
                self._note(ev.t)
            elif kind is StreamGap:
                assert isinstance(ev, StreamGap)
                self.dropped += ev.dropped
            elif kind is Output:
                assert isinstance(ev, Output)
                self.output.append(ev)
                self.output_version += 1
            elif kind is Observed:
                assert isinstance(ev, Observed)
                runs_changed = True
                self.observed.append(ev)
                self._note(ev.t)
        if changed:
            self.version += 1
            self.tasks_version += tasks_changed
            self.incidents_version += incidents_changed
            self.runs_version += runs_changed
            self.measures_version += measures_changed
            self._prune(tasks_changed)

    def _note(self, t: float) -> None:
        if t > self.latest:
            self.latest = t

    def _add_sample(self, sample: CoreSample) -> None:
        self.samples.append(sample)
        best: list[tuple[float, Role | None]] = [(0.0, None)] * self.cores
        for p in sample.placements:
            if 0 <= p.core < self.cores and p.cpu_pct >= 5.0 and p.cpu_pct > best[p.core][0]:
                best[p.core] = (p.cpu_pct, p.role)
        self._dominant.append(tuple(role for _, role in best))
        if len(self.samples) >= 2:
            dt = sample.t - self.samples[-2].t
            if dt > 0:
                self.ctx_switches_per_s = sample.ctx_switches / dt
        self._note(sample.t)

    def _prune(self, tasks_changed: bool = True) -> None:
        """Hold the retention caps: history_s of samples and exited tasks, and the MAX_ counts
        above, so memory follows the window shown, not how long cpviz has been running."""
        horizon = self.latest - self.history_s
        samples = self.samples
        while samples and (samples[0].t < horizon or len(samples) > MAX_SAMPLES):
            samples.popleft()
            self._dominant.popleft()
        if tasks_changed:
            self._cap_steps()
        self._prune_tasks(horizon)
        if len(self.incidents) > MAX_INCIDENTS:
            del self.incidents[: len(self.incidents) - MAX_INCIDENTS]
            self.incidents_version += 1
        if len(self.runs) > MAX_RUNS:
            self.runs_version += 1
            for run_id in sorted(self.runs)[: len(self.runs) - MAX_RUNS]:
                del self.runs[run_id]
                self._forget_run(run_id)
        # Figures of runs whose start was never seen (a recording begun mid-run) are kept for
        # the newest MAX_RUNS run ids too.
        for table in (self._run_tasks, self._run_steps, self.metrics, self.sweeps, self.phases):
            if len(table) > 2 * MAX_RUNS:
                unseen = sorted(run_id for run_id in table if run_id not in self.runs)
                for run_id in unseen[: len(table) - 2 * MAX_RUNS]:
                    self._forget_run(run_id)
        if len(self.stalls) > MAX_INCIDENTS:
            del self.stalls[: len(self.stalls) - MAX_INCIDENTS]
        tracked = self._task_run
        if len(tracked) > MAX_TRACKED:
            for task_id in list(itertools.islice(tracked, len(tracked) - MAX_TRACKED)):
                del tracked[task_id]

    def _forget_run(self, run_id: int) -> None:
        self._run_tasks.pop(run_id, None)
        self._run_steps.pop(run_id, None)
        self.metrics.pop(run_id, None)
        self.sweeps.pop(run_id, None)
        self.phases.pop(run_id, None)

    def _cap_steps(self) -> None:
        """Past MAX_STEPS steps in all, every task keeps only its latest ones (oldest out)."""
        tasks = self.tasks
        if not tasks or sum(len(t.steps) for t in tasks.values()) <= MAX_STEPS:
            return
        keep = max(16, MAX_STEPS // (2 * len(tasks)))
        for info in tasks.values():
            if len(info.steps) > keep:
                del info.steps[:-keep]
        self.tasks_version += 1

    def _prune_tasks(self, horizon: float) -> None:
        """Tasks that exited before ``horizon`` go, in exit order; past max_tasks the earliest
        exited go first, then the oldest alive. Costs O(tasks removed), never a scan of all."""
        tasks, exits = self.tasks, self._exits
        removed = dropped = 0
        while exits and (exits[0][0] < horizon or len(tasks) > self.max_tasks):
            end, seq, task_id = exits.popleft()
            info = tasks.get(task_id)
            if info is not None and info.seq == seq:
                del tasks[task_id]
                removed += 1
                dropped += end >= horizon
        if len(tasks) > self.max_tasks:
            for task_id in list(itertools.islice(tasks, len(tasks) - self.max_tasks)):
                del tasks[task_id]
                dropped += 1
            removed += 1
        if removed:
            self.tasks_version += 1
        if dropped:
            self.tasks_dropped += 1

    # -- queries: incidents and runs ------------------------------------------------------------

    @property
    def open_incident(self) -> IncidentView | None:
        for inc in reversed(self.incidents):
            if inc.end is None:
                return inc
        return None

    @property
    def open_stall(self) -> StallView | None:
        for stall in reversed(self.stalls):
            if stall.end is None:
                return stall
        return None

    def active_runs(self) -> list[RunView]:
        return [r for r in self.runs.values() if r.end is None]

    def frozen_spans(self, t0: float, t1: float, now: float) -> list[tuple[float, float]]:
        """Freezes overlapping [t0, t1], an open one running to ``now``."""
        spans = []
        for inc in self.incidents:
            end = inc.end if inc.end is not None else now
            if end >= t0 and inc.since <= t1:
                spans.append((inc.since, end))
        return spans

    # -- queries: timeline ----------------------------------------------------------------------

    def rows(self) -> list[TaskInfo]:
        """Tasks in spawn order."""
        return list(self.tasks.values())

    def run_order(self) -> list[int]:
        """Runs in the order their rows are listed: going ones first, newest first, then the
        finished, newest first, then tasks of no run (0)."""
        runs = self.runs
        going = sorted((r for r in runs if runs[r].end is None), reverse=True)
        done = sorted((r for r in runs if runs[r].end is not None), reverse=True)
        return [*going, *done, 0]

    def task_states(
        self, info: TaskInfo, t0: float, t1: float, ncols: int,
        frozen: list[tuple[float, float]] | None = None,
    ) -> list[State]:
        """The state of one task in each of ``ncols`` equal columns of [t0, t1).

        A column counts as RUNNING only when the task ran for at least half of it; a shorter
        step shows as RAN, so a 1 ms step in a 50 ms column does not look like 50 ms of work.
        Likewise READY needs the task to have waited to run for a quarter of the column: every
        wake-up is ready for some microseconds, and only a delay one can see is worth showing.
        ``frozen`` is ``frozen_spans(t0, t1, t1)``, worked out once for a frame's rows.
        """
        cols = [State.NONE] * ncols
        if ncols <= 0 or t1 <= t0:
            return cols
        width = (t1 - t0) / ncols
        scale = 1.0 / width
        origin = round(t0 * scale)
        last = ncols - 1

        def col(t: float) -> int:
            # Absolute columns, as every view on the axis counts them (cpviz.widgets.axis).
            c = math.floor(t * scale) - origin
            return 0 if c < 0 else (last if c > last else c)

        end = info.exit if info.exit is not None else t1
        if end < t0 or info.spawn > t1:
            return cols
        for c in range(col(info.spawn), col(end) + 1):
            cols[c] = State.WAITING
        # Every freeze the task lived through, whether or not it has exited since.
        for s0, s1 in self.frozen_spans(t0, t1, t1) if frozen is None else frozen:
            lo, hi = max(s0, info.spawn), min(s1, end)
            if lo <= hi:
                for c in range(col(lo), col(hi) + 1):
                    cols[c] = State.FROZEN
        if info.exit is None:
            inc = self.open_incident
            if inc is not None and inc.task_id == info.task_id:
                for c in range(col(max(inc.since, t0)), col(t1) + 1):
                    cols[c] = State.RUNNING
        steps = info.steps
        if not steps or steps[-1][2] < t0:
            return cols
        ran = [0.0] * ncols
        waited = [0.0] * ncols
        first = bisect_left(steps, t0, key=_step_end)
        for ready, start, stop in steps[first:]:
            if ready > t1:
                break
            if start > ready:
                for c in range(col(ready), col(start) + 1):
                    c0 = t0 + c * width
                    waited[c] += min(start, c0 + width) - max(ready, c0)
            for c in range(col(start), col(stop) + 1):
                c0 = t0 + c * width
                ran[c] += min(stop, c0 + width) - max(start, c0)
        half, quarter = width / 2, width / 4
        for c in range(ncols):
            if waited[c] >= quarter and cols[c] < State.READY:
                cols[c] = State.READY
            if ran[c] > 0:
                cols[c] = State.RUNNING if ran[c] >= half else max(cols[c], State.RAN)
        return cols

    def band(self, t0: float, t1: float, ncols: int) -> tuple[list[int], list[int], list[int]]:
        """Per column: how many tasks ran, were ready but not running, and were waiting.

        A task counts once per column in each of "ran" and "ready" ("ready" as in task_states:
        waiting to run for at least a quarter of the column); "waiting" is the rest of the
        tasks alive in that column. Worked out afresh; a view that asks every frame keeps a
        :class:`BandWindow`, which folds only what is new.
        """
        if ncols <= 0 or t1 <= t0:
            return [0] * ncols, [0] * ncols, [0] * ncols
        step = (t1 - t0) / ncols
        return BandWindow(self).columns(step, round(t0 / step), ncols)

    def frozen_columns(self, t0: float, t1: float, ncols: int, now: float) -> list[bool]:
        """Columns during which the loop was frozen."""
        cols = [False] * ncols
        if ncols <= 0 or t1 <= t0:
            return cols
        step = (t1 - t0) / ncols
        scale = 1.0 / step
        first = round(t0 * scale)
        for s0, s1 in self.frozen_spans(t0, t1, now):
            a = max(0, math.floor(s0 * scale) - first)
            b = min(ncols - 1, math.floor(s1 * scale) - first)
            for c in range(a, b + 1):
                cols[c] = True
        return cols

    # -- queries: cores -------------------------------------------------------------------------

    def latest_sample(self) -> CoreSample | None:
        return self.samples[-1] if self.samples else None


class _Column:
    """What the samples overlapping one absolute column add up to, per lane."""

    __slots__ = ("cell", "roles", "sums", "weight")

    def __init__(self, lanes: int) -> None:
        #: Seconds of samples folded in, and per lane the percent and role seconds they carry.
        self.weight = 0.0
        self.sums = [0.0] * lanes
        self.roles: list[dict[Role, float]] = [{} for _ in range(lanes)]
        #: The lanes' cells, or None until asked for again after a fold.
        self.cell: tuple[CoreColumn, ...] | None = None


#: The cell of a column no sample overlaps.
_EMPTY = CoreColumn(None, None)


class CoreWindow:
    """Per lane (a core, or a group of cores), the mean utilization and dominant cpviz role in
    each column of the shared time axis.

    A sample stands for the interval since the one before it (the OS measured the load over
    it), so a column's value is the time-weighted mean of the samples overlapping its span,
    and a 0.25 s window is as full as a 60 s one. State is kept per absolute column
    (``floor(t * (1 / step))``), so as the window moves only the new samples are folded and the
    columns that left are dropped: a frame costs O(lanes × columns on screen), never
    O(history); a new zoom, grouping or a move back in time is folded afresh once.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._key: tuple[object, ...] | None = None
        self._cols: dict[int, _Column] = {}
        #: Lowest absolute column folded completely, and the newest sample folded.
        self._from = 0
        self._newest: float | None = None
        self._lanes: list[range] = []

    def lanes(
        self, step: float, first: int, ncols: int, group: int = 1, until: float = math.inf
    ) -> list[list[CoreColumn]]:
        """Per lane of ``group`` cores, the cells of absolute columns first..first+ncols-1,
        from samples up to ``until`` (the display time; later samples wait for it)."""
        model = self._model
        cores = model.cores
        group = max(1, group)
        if ncols <= 0 or step <= 0 or not math.isfinite(step):
            return [[] for _ in range(math.ceil(cores / group))]
        end = first + ncols
        limit = min(end * step, until)
        key = (step, group, cores, id(model.samples))
        newest = self._newest
        if key != self._key or first < self._from or (newest is not None and limit < newest):
            self._key = key
            self._cols = {}
            self._from = first
            self._newest = newest = None
            self._lanes = [range(a, min(cores, a + group)) for a in range(0, cores, group)]
        elif first > self._from:
            cols = self._cols
            if first - self._from > len(cols):
                self._cols = {c: v for c, v in cols.items() if c >= first}
            else:
                for c in range(self._from, first):
                    cols.pop(c, None)
            self._from = first
        self._fold(step, first, end, limit)
        cols = self._cols
        out: list[list[CoreColumn]] = [[] for _ in self._lanes]
        for c in range(first, end):
            col = cols.get(c)
            cells = self._cells(col) if col is not None else None
            if cells is None:
                for cells_of_lane in out:
                    cells_of_lane.append(_EMPTY)
            else:
                for i, cell in enumerate(cells):
                    out[i].append(cell)
        return out

    def columns(
        self, t0: float, t1: float, ncols: int, until: float = math.inf
    ) -> list[list[CoreColumn]]:
        """Per core, the columns of [t0, t1): :meth:`lanes` for a window given by its ends."""
        if ncols <= 0 or not t1 > t0:
            return [[_EMPTY] * max(0, ncols) for _ in range(self._model.cores)]
        step = (t1 - t0) / ncols
        return self.lanes(step, round(t0 / step), ncols, 1, until)

    def _fold(self, step: float, first: int, end: int, limit: float) -> None:
        """Fold the samples newer than the last folded and no later than ``limit``."""
        model = self._model
        newest = self._newest
        floor_t = newest if newest is not None else first * step - MAX_SAMPLE_SPAN
        fresh: list[tuple[CoreSample, tuple[Role | None, ...]]] = []
        prev: float | None = None
        for pair in zip(reversed(model.samples), reversed(model._dominant), strict=True):
            t = pair[0].t
            if t <= floor_t:
                prev = t
                break  # samples arrive in time order
            if t <= limit:
                fresh.append(pair)
        if not fresh:
            return
        cols = self._cols
        lanes = self._lanes
        nlanes = len(lanes)
        scale = 1.0 / step
        for sample, dominant in reversed(fresh):
            b = sample.t
            a = max(prev if prev is not None else b - DEFAULT_SAMPLE_SPAN, b - MAX_SAMPLE_SPAN)
            prev = b
            ca = max(first, math.floor(a * scale))
            cb = min(end - 1, math.floor(b * scale))
            if ca > cb:
                continue
            pcts = sample.percents
            means = []
            for cores in lanes:
                got = [pcts[i] for i in cores if i < len(pcts)]
                means.append(sum(got) / len(got) if got else 0.0)
            for c in range(ca, cb + 1):
                w = min(b, (c + 1) * step) - max(a, c * step)
                if w <= 0:
                    continue
                col = cols.get(c)
                if col is None:
                    col = cols[c] = _Column(nlanes)
                col.weight += w
                col.cell = None
                sums, roles = col.sums, col.roles
                for lane in range(nlanes):
                    sums[lane] += w * means[lane]
                    seen = roles[lane]
                    for i in lanes[lane]:
                        role = dominant[i] if i < len(dominant) else None
                        if role is not None:
                            seen[role] = seen.get(role, 0.0) + w
        self._newest = fresh[0][0].t

    @staticmethod
    def _cells(col: _Column) -> tuple[CoreColumn, ...]:
        cell = col.cell
        if cell is None:
            w = col.weight
            cell = col.cell = tuple(
                CoreColumn(s / w, max(seen.items(), key=lambda kv: kv[1])[0] if seen else None)
                for s, seen in zip(col.sums, col.roles, strict=True)
            )
        return cell


class BandWindow:
    """Per column of the shared axis: how many tasks ran, were ready but not running, and
    waited (the timeline's band), as :meth:`Model.band` counts them.

    Kept per absolute column and folded from the Model's journal, so a frame folds only the
    task events since the last one and drops the columns that left: its cost follows the
    events and the columns on screen, not the tasks kept. A new zoom, a move back in time, a
    change of whose tasks count, or a journal that ran past what was folded start afresh from
    the tasks (once).
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._key: tuple[object, ...] | None = None
        self._from = 0
        self._read = 0
        #: Absolute column -> tasks that ran / were ready in it; alive: +1 from a spawn's
        #: column, -1 after an exit's; ``_base`` is the alive count left of ``_from``.
        self._ran: dict[int, int] = {}
        self._ready: dict[int, int] = {}
        self._alive: dict[int, int] = {}
        self._base = 0
        #: Per task, the last column it was counted in as ran and as ready.
        self._ran_upto: dict[int, int] = {}
        self._ready_upto: dict[int, int] = {}
        #: Tasks left out (cpviz's own, when hidden).
        self._skip: set[int] = set()

    def columns(
        self, step: float, first: int, ncols: int, own: bool = True
    ) -> tuple[list[int], list[int], list[int]]:
        """(ran, ready, waiting) for absolute columns first..first+ncols-1; ``own`` counts
        cpviz's own tasks too."""
        model = self._model
        if ncols <= 0 or step <= 0 or not math.isfinite(step):
            return [], [], []
        key = (step, own, id(model.journal), model.tasks_dropped)
        behind = model.journal_end - len(model.journal) > self._read
        if key != self._key or first < self._from or behind:
            self._rebuild(key, step, first, own)
        elif first > self._from:
            self._drop(first)
        self._fold(step, own)
        end = first + ncols
        ran, ready, alive = self._ran, self._ready, self._alive
        running, ready_n, waiting = [], [], []
        al = self._base
        for c in range(first, end):
            r = ran.get(c, 0)
            q = ready.get(c, 0)
            al += alive.get(c, 0)
            running.append(r)
            ready_n.append(q)
            waiting.append(max(0, al - r - q))
        return running, ready_n, waiting

    def _rebuild(self, key: tuple[object, ...], step: float, first: int, own: bool) -> None:
        model = self._model
        self._key = key
        self._from = first
        self._ran, self._ready, self._alive = {}, {}, {}
        self._base = 0
        self._ran_upto, self._ready_upto = {}, {}
        self._skip = set()
        t0 = first * step
        for info in model.tasks.values():
            if info.own and not own:
                self._skip.add(info.task_id)
                continue
            self._spawned(info.task_id, info.spawn, step)
            steps = info.steps
            if steps and steps[-1][2] >= t0:
                for ready, start, stop in steps[bisect_left(steps, t0, key=_step_end):]:
                    self._stepped(info.task_id, ready, start, stop, step)
            if info.exit is not None:
                self._exited(info.task_id, info.exit, step)
        self._read = model.journal_end

    def _drop(self, first: int) -> None:
        """Forget the columns left of ``first``, keeping the alive count they carried."""
        for table in (self._ran, self._ready):
            if first - self._from > len(table):
                kept = {c: v for c, v in table.items() if c >= first}
                table.clear()
                table.update(kept)
            else:
                for c in range(self._from, first):
                    table.pop(c, None)
        alive = self._alive
        if first - self._from > len(alive):
            for c in [c for c in alive if c < first]:
                self._base += alive.pop(c)
        else:
            for c in range(self._from, first):
                self._base += alive.pop(c, 0)
        self._from = first

    def _fold(self, step: float, own: bool) -> None:
        model = self._model
        new = model.journal_end - self._read
        if new <= 0:
            return
        journal = model.journal
        tasks = model.tasks
        skip = self._skip
        for kind, task_id, a, b, c in itertools.islice(journal, len(journal) - new, None):
            if kind == SPAWN:
                info = tasks.get(task_id)
                if info is not None and info.own and not own:
                    skip.add(task_id)
                    continue
                skip.discard(task_id)
                self._spawned(task_id, a, step)
            elif task_id not in skip:
                self._stepped(task_id, a, b, c, step)
                if kind == FINAL:
                    self._exited(task_id, c, step)
        self._read = model.journal_end

    def _spawned(self, task_id: int, t: float, step: float) -> None:
        col = math.floor(t * (1.0 / step))
        if col < self._from:
            self._base += 1
        else:
            self._alive[col] = self._alive.get(col, 0) + 1

    def _exited(self, task_id: int, t: float, step: float) -> None:
        col = math.floor(t * (1.0 / step)) + 1
        if col < self._from:
            self._base -= 1
        else:
            self._alive[col] = self._alive.get(col, 0) - 1
        self._ran_upto.pop(task_id, None)
        self._ready_upto.pop(task_id, None)

    def _stepped(self, task_id: int, ready: float, start: float, stop: float,
                 step: float) -> None:
        low = self._from
        scale = 1.0 / step
        if start - ready >= step / 4:
            # Columns where this wait covers at least a quarter (as task_states).
            fr, fs = ready * scale, start * scale
            cr = math.floor(fr)
            if cr + 1 - fr < 0.25 and cr < math.floor(fs):
                cr += 1
            ce = math.floor(fs)
            if fs - ce < 0.25 and ce > cr:
                ce -= 1
            _mark(self._ready, self._ready_upto, task_id, max(cr, low), ce)
        _mark(self._ran, self._ran_upto, task_id, max(math.floor(start * scale), low),
              math.floor(stop * scale))


def _mark(table: dict[int, int], upto: dict[int, int], task_id: int, a: int, b: int) -> None:
    """Count columns a..b for one task, skipping those it is already counted in."""
    done = upto.get(task_id, a - 1)
    if a <= done:
        a = done + 1
    if a > b:
        return
    for c in range(a, b + 1):
        table[c] = table.get(c, 0) + 1
    upto[task_id] = b
