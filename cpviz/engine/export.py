"""Export a recording as Chrome Trace Event JSON, which Perfetto and chrome://tracing open.

What goes where (``pid`` groups tracks, ``tid`` is one track within a group):

* pid 1 "event loop": one track per task, named by the task, with a slice for every step it
  ran (``X``; ``args.ready_us`` says how long it waited to run) and, where that wait was at
  least :data:`READY_MIN_S`, a "ready" slice before it: the time it was ready but not running.
* pid 2 "runs": one track per run, a slice from its start to its end whose args are the run's
  measured result, with the run's timed phases (pool start-up) nested inside it.
* pid 3 "watchdog": loop freezes, and each run's stalls, as slices, and the moment each was
  detected as an instant event (``i``) carrying the culprit (file:line, function, code,
  blocking call) or the waiters; dropped events as instants too.
* pid 4 "cores": a counter track (``C``) per core with its measured utilization, plus loop lag,
  context switches and every gauge a run sampled.

Times are the recording's session clock in microseconds. Nothing is computed that was not
recorded: a run the recording stopped before ends at the last event and says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    LoopLag,
    Metric,
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
from cpviz.engine.recording import Recording
from cpviz.engine.source import event_time

LOOP_PID, RUNS_PID, WATCHDOG_PID, CORES_PID = 1, 2, 3, 4
FREEZE_TID, NOTE_TID = 1, 2
#: Stalls go on one track per run (runs can stall at once): this plus the run id.
STALL_TID_BASE = 100
#: Shortest ready-but-not-running wait drawn as its own slice (shorter ones only in args).
READY_MIN_S = 100e-6


def _us(t: float) -> float:
    """Seconds to microseconds, to the nanosecond, so exports are stable and compact."""
    return round(t * 1e6, 3)


def _clean(value: Any) -> Any:
    """JSON that every parser accepts: no NaN or infinity (they become null), tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _frame(frame: Frame | None) -> dict[str, Any]:
    if frame is None:
        return {"culprit": None}
    return {
        "culprit": f"{frame.file}:{frame.line}",
        "file": frame.file,
        "line": frame.line,
        "function": frame.function,
        "code": frame.code,
    }


class _Builder:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.out: list[dict[str, Any]] = []
        self.meta: list[dict[str, Any]] = []
        self.tids: dict[int, int] = {}
        self.next_tid = 0
        self.names: dict[int, str] = {}
        self.end = 0.0
        # Tasks and steps per run, counted as the Model counts them for a run's result.
        self.task_run: dict[int, int] = {}
        self.last_end: dict[int, float] = {}
        self.stall_tracks: set[int] = set()
        self.run_tasks: dict[int, int] = {}
        self.run_steps: dict[int, int] = {}

    def x(self, name: str, cat: str, t0: float, t1: float, pid: int, tid: int,
          args: dict[str, Any] | None = None) -> None:
        ev: dict[str, Any] = {
            "ph": "X", "name": name, "cat": cat, "ts": _us(t0),
            "dur": max(0.0, round(_us(t1) - _us(t0), 3)), "pid": pid, "tid": tid,
        }
        if args:
            ev["args"] = _clean(args)
        self.out.append(ev)

    def instant(self, name: str, cat: str, t: float, pid: int, tid: int, scope: str,
                args: dict[str, Any]) -> None:
        self.out.append({
            "ph": "i", "name": name, "cat": cat, "ts": _us(t), "pid": pid, "tid": tid,
            "s": scope, "args": _clean(args),
        })

    def counter(self, name: str, t: float, values: dict[str, float], pid: int = CORES_PID
                ) -> None:
        clean = {k: v for k, v in values.items() if math.isfinite(v)}
        if clean:
            self.out.append({"ph": "C", "name": name, "ts": _us(t), "pid": pid, "tid": 0,
                             "args": clean})

    def process(self, pid: int, name: str) -> None:
        self.meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                          "args": {"name": name}})
        self.meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                          "args": {"sort_index": pid}})

    def thread(self, pid: int, tid: int, name: str) -> None:
        self.meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                          "args": {"name": name}})
        self.meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                          "args": {"sort_index": tid}})

    def task_tid(self, task_id: int, name: str | None = None) -> int:
        tid = self.tids.get(task_id)
        if tid is None:
            self.next_tid += 1
            tid = self.tids[task_id] = self.next_tid
            label = name if name is not None else f"task {task_id:x}"
            self.names[task_id] = label
            self.thread(LOOP_PID, tid, label)
        return tid

    def build(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        rec = self.recording
        self.process(LOOP_PID, "event loop (tasks)")
        self.process(RUNS_PID, "runs")
        self.process(WATCHDOG_PID, "watchdog")
        self.thread(WATCHDOG_PID, FREEZE_TID, "loop freezes")
        self.thread(WATCHDOG_PID, NOTE_TID, "dropped events")
        self.process(CORES_PID, f"cores ({rec.header.cores} logical CPUs)")
        runs: dict[int, RunStart] = {}
        incidents: dict[int, IncidentStart] = {}
        stalls: dict[int, StallStart] = {}
        last_sample: float | None = None
        for ev in events:
            self.end = max(self.end, event_time(ev))
            kind = type(ev)
            if kind is TaskStep:
                assert isinstance(ev, TaskStep)
                tid = self.task_tid(ev.task_id)
                name = self.names[ev.task_id]
                run_id = self.task_run.get(ev.task_id, 0)
                if run_id:
                    self.run_steps[run_id] = self.run_steps.get(run_id, 0) + 1
                wait = ev.start - ev.ready
                # A task can be woken while its previous step still runs: the ready slice
                # begins when that step ended, so slices on the track never overlap.
                ready = max(ev.ready, self.last_end.get(ev.task_id, ev.ready))
                if ev.start - ready >= READY_MIN_S:
                    self.x("ready", "ready", ready, ev.start, LOOP_PID, tid, {"task": name})
                self.last_end[ev.task_id] = ev.end
                args: dict[str, Any] = {"ready_us": round(wait * 1e6, 3)}
                if ev.final:
                    args["final"] = True
                self.x(name, "step", ev.start, ev.end, LOOP_PID, tid, args)
            elif kind is TaskSpawn:
                assert isinstance(ev, TaskSpawn)
                self.tids.pop(ev.task_id, None)  # an id can be reused once its task is gone
                tid = self.task_tid(ev.task_id, ev.name)
                self.task_run[ev.task_id] = ev.run_id
                if ev.run_id:
                    self.run_tasks[ev.run_id] = self.run_tasks.get(ev.run_id, 0) + 1
                parent = self.names.get(ev.parent_id) if ev.parent_id else None
                self.instant("spawn", "task", ev.t, LOOP_PID, tid, "t",
                             {"task": ev.name, "run_id": ev.run_id, "parent": parent})
            elif kind is CoreSample:
                assert isinstance(ev, CoreSample)
                for core, pct in enumerate(ev.percents):
                    self.counter(f"core {core} busy %", ev.t, {"busy %": pct})
                if last_sample is not None and ev.t > last_sample:
                    rate = ev.ctx_switches / (ev.t - last_sample)
                    self.counter("context switches /s", ev.t, {"per s": rate})
                last_sample = ev.t
            elif kind is LoopLag:
                assert isinstance(ev, LoopLag)
                self.counter("loop lag ms", ev.t, {"ms": ev.lag_s * 1000})
            elif kind is IncidentStart:
                assert isinstance(ev, IncidentStart)
                incidents[ev.incident_id] = ev
                args = {
                    "incident": ev.incident_id,
                    **_frame(ev.culprit),
                    "blocking_call": ev.blocking_call,
                    "task": self.names.get(ev.task_id) if ev.task_id else None,
                    "frozen_since_us": _us(ev.since),
                }
                self.instant("loop frozen", "incident", ev.t, WATCHDOG_PID, FREEZE_TID, "g",
                             args)
            elif kind is IncidentEnd:
                assert isinstance(ev, IncidentEnd)
                start = incidents.pop(ev.incident_id, None)
                if start is not None:
                    self._freeze(start, start.since + ev.duration_s, True)
            elif kind is StallStart:
                assert isinstance(ev, StallStart)
                stalls[ev.stall_id] = ev
                waiters = [
                    {"kind": w.kind, "name": w.name, "waits_on": w.waits_on,
                     "held_by": w.held_by, **_frame(w.frame)}
                    for w in ev.waiters
                ]
                tid = STALL_TID_BASE + ev.run_id
                if tid not in self.stall_tracks:
                    self.stall_tracks.add(tid)
                    self.thread(WATCHDOG_PID, tid, f"stalls of run {ev.run_id}")
                self.instant("no progress", "stall", ev.t, WATCHDOG_PID, tid, "g",
                             {"stall": ev.stall_id, "run_id": ev.run_id, "waiters": waiters})
            elif kind is StallEnd:
                assert isinstance(ev, StallEnd)
                stall = stalls.pop(ev.stall_id, None)
                if stall is not None:
                    self._stall(stall, ev.t, True)
            elif kind is RunStart:
                assert isinstance(ev, RunStart)
                runs[ev.run_id] = ev
                self.thread(RUNS_PID, ev.run_id, f"run {ev.run_id}: {ev.workload}:{ev.mode}")
            elif kind is RunEnd:
                assert isinstance(ev, RunEnd)
                begun = runs.pop(ev.run_id, None)
                t0 = begun.t if begun is not None else ev.t - ev.result.wall_s
                if begun is None:
                    self.thread(RUNS_PID, ev.run_id,
                                f"run {ev.run_id}: {ev.result.workload}:{ev.result.mode}")
                result = dataclasses.replace(
                    ev.result,
                    tasks=self.run_tasks.get(ev.run_id, 0),
                    steps=self.run_steps.get(ev.run_id, 0),
                )
                self.x(f"{result.workload}:{result.mode}", "run", t0, ev.t, RUNS_PID,
                       ev.run_id, result.as_dict())
            elif kind is RunProgress:
                assert isinstance(ev, RunProgress)
                self.counter(f"run {ev.run_id} done", ev.t, {"done": float(ev.done)})
            elif kind is Phase:
                assert isinstance(ev, Phase)
                self.x(ev.name, "phase", ev.start, ev.t, RUNS_PID, ev.run_id,
                       {"detail": ev.detail})
            elif kind is Metric:
                assert isinstance(ev, Metric)
                self.counter(f"run {ev.run_id} {ev.name}", ev.t, {ev.name: ev.value})
            elif kind is SweepPoint:
                assert isinstance(ev, SweepPoint)
                self.instant(f"sweep x={ev.x:g}", "sweep", ev.t, RUNS_PID, ev.run_id, "t",
                             {"x": ev.x, **dict(ev.figures)})
            elif kind is StreamGap:
                assert isinstance(ev, StreamGap)
                self.instant("events dropped", "gap", ev.t, WATCHDOG_PID, NOTE_TID, "g",
                             {"dropped": ev.dropped})
        # What the recording stopped before: shown to its last event, and labelled so.
        for start in incidents.values():
            self._freeze(start, self.end, False)
        for stall in stalls.values():
            self._stall(stall, self.end, False)
        for begun in runs.values():
            self.x(f"{begun.workload}:{begun.mode}", "run", begun.t, self.end, RUNS_PID,
                   begun.run_id, {"outcome": "unfinished when the recording ended",
                                  "params": dict(begun.params)})
        return self.meta + self.out

    def _freeze(self, start: IncidentStart, end: float, ended: bool) -> None:
        args = {"incident": start.incident_id, **_frame(start.culprit),
                "blocking_call": start.blocking_call}
        if not ended:
            args["note"] = "still frozen when the recording ended"
        self.x("loop frozen", "incident", start.since, end, WATCHDOG_PID, FREEZE_TID, args)

    def _stall(self, stall: StallStart, end: float, ended: bool) -> None:
        args: dict[str, Any] = {"stall": stall.stall_id, "run_id": stall.run_id,
                                "waiters": [w.name for w in stall.waiters]}
        if not ended:
            args["note"] = "still stalled when the recording ended"
        self.x("no progress", "stall", stall.since, end, WATCHDOG_PID,
               STALL_TID_BASE + stall.run_id, args)


def to_trace(recording: Recording) -> dict[str, Any]:
    """The Chrome Trace Event document for a recording."""
    header = recording.header
    return {
        "traceEvents": _Builder(recording).build(recording.events),
        "displayTimeUnit": "ms",
        "otherData": {
            "source": "cpviz",
            "recording": Path(recording.path).name,
            "cpviz": header.cpviz,
            "platform": header.platform,
            "python": header.python,
            "cores": header.cores,
            "started": header.started,
            "command": header.command,
        },
    }


def dumps(trace: dict[str, Any]) -> str:
    """The document as text: one trace event a line, so files diff and stream well."""
    events = ",\n".join(
        json.dumps(ev, separators=(",", ":"), allow_nan=False) for ev in trace["traceEvents"]
    )
    rest = {k: v for k, v in trace.items() if k != "traceEvents"}
    tail = json.dumps(rest, separators=(",", ":"), allow_nan=False)[1:]
    return '{"traceEvents":[\n' + events + "\n]," + tail + "\n"


def export_perfetto(recording: Recording, out: str | Path) -> int:
    """Write the trace to ``out``; returns the number of trace events written."""
    trace = to_trace(recording)
    Path(out).write_text(dumps(trace), encoding="utf-8")
    return len(trace["traceEvents"])
