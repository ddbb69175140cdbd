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
#: Task steps kept across every task; past it, each task keeps only its latest steps.
MAX_STEPS = 400_000
#: Runs (with their gauges, points and phases), loop freezes and stalls kept, newest last.
MAX_RUNS = 50
MAX_INCIDENTS = 200
#: Tasks followed for their run's step count once their rows are gone (the oldest go first).
MAX_TRACKED = 100_000


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
        max_tasks: int = 5000,
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
                if ev.final:
                    info.exit = ev.end
                if ev.end > self.latest:
                    self.latest = ev.end
            elif kind is TaskSpawn:
                assert isinstance(ev, TaskSpawn)
                tasks_changed = True
                self._seq += 1
                tasks.pop(ev.task_id, None)  # an id can be reused once its task is gone
                tasks[ev.task_id] = TaskInfo(
                    ev.task_id, ev.name, ev.run_id, ev.parent_id, ev.t, self._seq
                )
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
        if len(self.tasks) > self.max_tasks or (
            self.tasks and self._oldest_exit_before(horizon)
        ):
            keep = [
                t for t in self.tasks.values() if t.exit is None or t.exit >= horizon
            ]
            if len(keep) > self.max_tasks:
                keep = keep[-self.max_tasks :]
            self.tasks = {t.task_id: t for t in keep}
            self.tasks_version += 1
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

    def _oldest_exit_before(self, horizon: float) -> bool:
        first = next(iter(self.tasks.values()))
        return first.exit is not None and first.exit < horizon

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

    def _frozen_spans(self, t0: float, t1: float, now: float) -> list[tuple[float, float]]:
        spans = []
        for inc in self.incidents:
            end = inc.end if inc.end is not None else now
            if end >= t0 and inc.since <= t1:
                spans.append((inc.since, end))
        return spans

    # -- queries: timeline ----------------------------------------------------------------------

    def rows(self) -> list[TaskInfo]:
        """Tasks in the order the timeline lists them (spawn order)."""
        return list(self.tasks.values())

    def task_states(self, info: TaskInfo, t0: float, t1: float, ncols: int) -> list[State]:
        """The state of one task in each of ``ncols`` equal columns of [t0, t1).

        A column counts as RUNNING only when the task ran for at least half of it; a shorter
        step shows as RAN, so a 1 ms step in a 50 ms column does not look like 50 ms of work.
        Likewise READY needs the task to have waited to run for a quarter of the column: every
        wake-up is ready for some microseconds, and only a delay one can see is worth showing.
        """
        cols = [State.NONE] * ncols
        if ncols <= 0 or t1 <= t0:
            return cols
        width = (t1 - t0) / ncols
        scale = 1.0 / width
        last = ncols - 1

        def col(t: float) -> int:
            c = int((t - t0) * scale)
            return 0 if c < 0 else (last if c > last else c)

        end = info.exit if info.exit is not None else t1
        if end < t0 or info.spawn > t1:
            return cols
        for c in range(col(info.spawn), col(end) + 1):
            cols[c] = State.WAITING
        # Every freeze the task lived through, whether or not it has exited since.
        for s0, s1 in self._frozen_spans(t0, t1, t1):
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
        tasks alive in that column. Built with difference arrays, so it costs one pass over the
        steps in the window rather than tasks × columns, and a task with no step in the window
        costs O(1).
        """
        if ncols <= 0 or t1 <= t0:
            return [0] * ncols, [0] * ncols, [0] * ncols
        run_d = [0] * (ncols + 1)
        ready_d = [0] * (ncols + 1)
        alive_d = [0] * (ncols + 1)
        scale = ncols / (t1 - t0)
        quarter = (t1 - t0) / ncols / 4
        last = ncols - 1

        def mark(diff: list[int], a: int, b: int, upto: int) -> int:
            """Count columns a..b for one task, skipping those it already counts in."""
            if a <= upto:
                a = upto + 1
            if a > b:
                return upto
            diff[a] += 1
            diff[b + 1] -= 1
            return b

        for info in self.tasks.values():
            end = info.exit if info.exit is not None else t1
            if end < t0 or info.spawn > t1:
                continue
            a = int((info.spawn - t0) * scale)
            b = int((end - t0) * scale)
            alive_d[0 if a < 0 else (last if a > last else a)] += 1
            alive_d[(last if b > last else b) + 1] -= 1
            steps = info.steps
            if not steps or steps[-1][2] < t0:
                continue
            ran_upto = ready_upto = -1
            for ready, start, stop in steps[bisect_left(steps, t0, key=_step_end) :]:
                if ready > t1:
                    break
                cs = int((start - t0) * scale)
                cs = 0 if cs < 0 else (last if cs > last else cs)
                if start - ready >= quarter:
                    # Columns where this wait covers at least a quarter (as task_states).
                    fr = (ready - t0) * scale
                    fs = (start - t0) * scale
                    cr = int(fr)
                    if cr + 1 - fr < 0.25 and cr < int(fs):
                        cr += 1
                    ce_ready = int(fs)
                    if fs - ce_ready < 0.25 and ce_ready > cr:
                        ce_ready -= 1
                    cr = 0 if cr < 0 else cr
                    ce_ready = last if ce_ready > last else ce_ready
                    ready_upto = mark(ready_d, cr, ce_ready, ready_upto)
                ce = int((stop - t0) * scale)
                ran_upto = mark(run_d, cs, last if ce > last else ce, ran_upto)
        running, ready_n, waiting = [], [], []
        r = q = al = 0
        for c in range(ncols):
            r += run_d[c]
            q += ready_d[c]
            al += alive_d[c]
            running.append(r)
            ready_n.append(q)
            waiting.append(max(0, al - r - q))
        return running, ready_n, waiting

    def frozen_columns(self, t0: float, t1: float, ncols: int, now: float) -> list[bool]:
        """Columns during which the loop was frozen."""
        cols = [False] * ncols
        if ncols <= 0 or t1 <= t0:
            return cols
        scale = ncols / (t1 - t0)
        for s0, s1 in self._frozen_spans(t0, t1, now):
            a = max(0, int((s0 - t0) * scale))
            b = min(ncols - 1, int((s1 - t0) * scale))
            for c in range(a, b + 1):
                cols[c] = True
        return cols

    # -- queries: cores -------------------------------------------------------------------------

    def latest_sample(self) -> CoreSample | None:
        return self.samples[-1] if self.samples else None


class CoreWindow:
    """Per core, the mean utilization and dominant cpviz role in each column of a window.

    The lanes redraw several times a second as samples arrive. While the window stays put only
    the new samples are folded in, so a sample costs O(cores), not O(cores × samples in the
    window); a new window is worked out afresh.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._window: tuple[float, float, int] | None = None
        self._newest: float | None = None
        self._sums: list[list[float]] = []
        self._counts: list[list[int]] = []
        self._roles: list[list[dict[Role, int]]] = []
        self._columns: list[list[CoreColumn]] = []

    def columns(
        self, t0: float, t1: float, ncols: int, until: float = math.inf
    ) -> list[list[CoreColumn]]:
        """Per core, the columns of [t0, t1) from samples up to ``until``.

        The lists are reused: read them, don't keep them.
        """
        model = self._model
        cores = model.cores
        newest = self._newest
        if (t0, t1, ncols) != self._window or (newest is not None and until < newest):
            self._window = (t0, t1, ncols)
            self._newest = None
            self._sums = [[0.0] * ncols for _ in range(cores)]
            self._counts = [[0] * ncols for _ in range(cores)]
            self._roles = [[{} for _ in range(ncols)] for _ in range(cores)]
            self._columns = [[CoreColumn(None, None)] * ncols for _ in range(cores)]
            newest = None
        if ncols <= 0 or t1 <= t0:
            return self._columns
        fresh: list[tuple[CoreSample, tuple[Role | None, ...]]] = []
        for pair in zip(reversed(model.samples), reversed(model._dominant), strict=True):
            t = pair[0].t
            if (newest is not None and t <= newest) or t < t0:
                break  # samples arrive in time order
            if t <= t1 and t <= until:
                fresh.append(pair)
        if not fresh:
            return self._columns
        self._newest = fresh[0][0].t
        scale = ncols / (t1 - t0)
        touched: set[int] = set()
        for sample, dominant in reversed(fresh):
            c = min(ncols - 1, int((sample.t - t0) * scale))
            touched.add(c)
            for core, pct in enumerate(sample.percents[:cores]):
                self._sums[core][c] += pct
                self._counts[core][c] += 1
                role = dominant[core] if core < len(dominant) else None
                if role is not None:
                    seen = self._roles[core][c]
                    seen[role] = seen.get(role, 0) + 1
        for core in range(cores):
            for c in touched:
                n = self._counts[core][c]
                if n:
                    seen = self._roles[core][c]
                    best = max(seen.items(), key=lambda kv: kv[1])[0] if seen else None
                    self._columns[core][c] = CoreColumn(self._sums[core][c] / n, best)
        return self._columns
