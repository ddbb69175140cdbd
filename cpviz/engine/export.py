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
* pid 5 "threads, from the OS" and pid 6 "processes, from the OS": one track per thread of the
  observed process (its tid) and per process below it (its pid), where the recording has them,
  with a slice for every stretch of samples in one state: "running on core N", "waiting for a
  CPU" or "gil?" (a futex wait while a sibling ran), whichever took most of each sample; a
  sample mostly spent waiting otherwise leaves the track empty. ``args`` give the seconds it ran,
  waited for a CPU and waited in a futex within the slice.

Times are the recording's session clock in microseconds. Nothing is computed that was not
recorded: a run the recording stopped before ends at the last event and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    LoopLag,
    Metric,
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
from cpviz.engine.recording import Header, Recording, RecordingReader
from cpviz.engine.recording.os_samples import Cell, rows_of, sample_times
from cpviz.engine.source import event_time

LOOP_PID, RUNS_PID, WATCHDOG_PID, CORES_PID = 1, 2, 3, 4
OS_THREADS_PID, OS_PROCESSES_PID = 5, 6
#: Rows whose names are remembered (to say a name once), at most.
MAX_NAMED = 10_000
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


_Emit = Callable[[dict[str, Any]], None]


class _Builder:
    """Turns events into trace events as they come, handing each to ``emit`` (track names and
    sort orders to ``emit_meta``), so a recording of any size exports in bounded memory:
    a task's bookkeeping is dropped at its last step."""

    def __init__(self, header: Header, emit: _Emit, emit_meta: _Emit) -> None:
        self.header = header
        self.emit = emit
        self.emit_meta = emit_meta
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
        #: Each OS row's open slice: [name, start, end, run s, delay s, gil s].
        self.os_open: dict[tuple[str, int], list[Any]] = {}
        self.os_named: dict[tuple[str, int], str] = {}

    def x(self, name: str, cat: str, t0: float, t1: float, pid: int, tid: int,
          args: dict[str, Any] | None = None) -> None:
        ev: dict[str, Any] = {
            "ph": "X", "name": name, "cat": cat, "ts": _us(t0),
            "dur": max(0.0, round(_us(t1) - _us(t0), 3)), "pid": pid, "tid": tid,
        }
        if args:
            ev["args"] = _clean(args)
        self.emit(ev)

    def instant(self, name: str, cat: str, t: float, pid: int, tid: int, scope: str,
                args: dict[str, Any]) -> None:
        self.emit({
            "ph": "i", "name": name, "cat": cat, "ts": _us(t), "pid": pid, "tid": tid,
            "s": scope, "args": _clean(args),
        })

    def counter(self, name: str, t: float, values: dict[str, float], pid: int = CORES_PID
                ) -> None:
        clean = {k: v for k, v in values.items() if math.isfinite(v)}
        if clean:
            self.emit({"ph": "C", "name": name, "ts": _us(t), "pid": pid, "tid": 0,
                             "args": clean})

    def process(self, pid: int, name: str) -> None:
        self.emit_meta({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                          "args": {"name": name}})
        self.emit_meta({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                          "args": {"sort_index": pid}})

    def thread(self, pid: int, tid: int, name: str) -> None:
        self.emit_meta({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                          "args": {"name": name}})
        self.emit_meta({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
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

    def build(self, events: Iterable[Event]) -> None:
        self.process(LOOP_PID, "event loop (tasks)")
        self.process(RUNS_PID, "runs")
        self.process(WATCHDOG_PID, "watchdog")
        self.thread(WATCHDOG_PID, FREEZE_TID, "loop freezes")
        self.thread(WATCHDOG_PID, NOTE_TID, "dropped events")
        self.process(CORES_PID, f"cores ({self.header.cores} logical CPUs)")
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
                if ev.final:  # its track is complete: forget the task
                    self.last_end.pop(ev.task_id, None)
                    self.task_run.pop(ev.task_id, None)
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
                    self._freeze(start, start.since + ev.duration_s, True, ev)
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
            elif kind is OsSamples:
                assert isinstance(ev, OsSamples)
                self._os_samples(ev)
        for key in list(self.os_open):
            self._os_close(key)
        # What the recording stopped before: shown to its last event, and labelled so.
        for start in incidents.values():
            self._freeze(start, self.end, False)
        for stall in stalls.values():
            self._stall(stall, self.end, False)
        for begun in runs.values():
            self.x(f"{begun.workload}:{begun.mode}", "run", begun.t, self.end, RUNS_PID,
                   begun.run_id, {"outcome": "unfinished when the recording ended",
                                  "params": dict(begun.params)})

    def _os_samples(self, ev: OsSamples) -> None:
        """Each row's samples as slices, one per stretch in one state."""
        try:
            rows = rows_of(ev)
        except ValueError:
            return  # the reader refuses these; a test's events may not have been read
        if not self.os_named:
            self.process(OS_THREADS_PID, "threads, from the OS")
            self.process(OS_PROCESSES_PID, "processes, from the OS")
        named = self.os_named
        for name in ev.names:
            said: tuple[str, int] = (name.kind, name.ident)
            label = f"{name.label} ({name.ident})" if name.kind == "thread" else name.label
            if named.get(said) != label:
                named[said] = label
                self.thread(_os_pid(said), said[1], label)
        times = sample_times(ev)
        here: set[tuple[str, int]] = set()
        for key, cells in rows:
            here.add(key)
            if key not in named:
                named[key] = f"{key[0]} {key[1]}"
                self.thread(_os_pid(key), key[1], named[key])
            for (a, b), cell in zip(times, cells, strict=True):
                self._os_sample(key, a, b, cell)
        for key in [k for k in self.os_open if k not in here]:
            self._os_close(key)
        if len(named) > MAX_NAMED:
            named.clear()

    def _os_sample(self, key: tuple[str, int], a: float, b: float, cell: Cell) -> None:
        name = _os_state(cell)
        slice_ = self.os_open.get(key)
        if slice_ is not None and (name != slice_[0] or a - slice_[2] > 1e-6):
            self._os_close(key)
            slice_ = None
        if cell is None or name is None:
            return
        if slice_ is None:
            slice_ = self.os_open[key] = [name, a, b, 0.0, 0.0, 0.0]
        span = b - a
        slice_[2] = b
        slice_[3] += cell[0] * span
        slice_[4] += cell[1] * span
        slice_[5] += cell[2] * span

    def _os_close(self, key: tuple[str, int]) -> None:
        slice_ = self.os_open.pop(key, None)
        if slice_ is None:
            return
        name, a, b, run, delay, gil = slice_
        self.x(name, "os", a, b, _os_pid(key), key[1], {
            "running_s": round(run, 6), "runnable_s": round(delay, 6),
            "gil_s": round(gil, 6)})

    def _freeze(
        self, start: IncidentStart, end: float, ended: bool, last: IncidentEnd | None = None
    ) -> None:
        # The final word on the cause when the freeze ended in the recording, else the first.
        said = last if last is not None and last.cause else start
        args: dict[str, Any] = {"incident": start.incident_id, **_frame(start.culprit),
                                "blocking_call": start.blocking_call}
        if said.cause:
            args["cause"] = said.cause
            args["shares"] = {name: round(share, 3) for name, share in said.shares}
            args["cause_detail"] = said.cause_detail
        if last is not None and last.gc_s:
            args["gc_s"] = round(last.gc_s, 6)
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


def _os_pid(key: tuple[str, int]) -> int:
    return OS_THREADS_PID if key[0] == "thread" else OS_PROCESSES_PID


def _os_state(cell: Cell) -> str | None:
    """What a sample of a row is called: the state that took most of it (None: waiting, or
    not sampled)."""
    if cell is None:
        return None
    run, delay, gil, core = cell
    wait = 1.0 - run - delay - gil
    if run > 0 and run >= max(delay, gil, wait):
        return f"running on core {core}" if core >= 0 else "running"
    if delay > 0 and delay >= max(gil, wait):
        return "waiting for a CPU"
    if gil > 0 and gil >= wait:
        return "gil?"
    return None


def _other_data(header: Header, path: str) -> dict[str, Any]:
    return {
        "source": "cpviz",
        "recording": Path(path).name,
        "cpviz": header.cpviz,
        "platform": header.platform,
        "python": header.python,
        "cores": header.cores,
        "started": header.started,
        "command": header.command,
    }


def to_trace(recording: Recording) -> dict[str, Any]:
    """The Chrome Trace Event document for a recording in memory."""
    meta: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    _Builder(recording.header, out.append, meta.append).build(recording.events)
    return {
        "traceEvents": meta + out,
        "displayTimeUnit": "ms",
        "otherData": _other_data(recording.header, recording.path),
    }


def _line(ev: dict[str, Any]) -> str:
    return json.dumps(ev, separators=(",", ":"), allow_nan=False)


def _tail(rest: dict[str, Any]) -> str:
    return json.dumps(rest, separators=(",", ":"), allow_nan=False)[1:] + "\n"


def dumps(trace: dict[str, Any]) -> str:
    """The document as text: one trace event a line, so files diff and stream well."""
    events = ",\n".join(_line(ev) for ev in trace["traceEvents"])
    rest = {k: v for k, v in trace.items() if k != "traceEvents"}
    return '{"traceEvents":[\n' + events + "\n]," + _tail(rest)


class _Spool:
    """Trace event lines written to a temporary file as they are made, and counted."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def __call__(self, ev: dict[str, Any]) -> None:
        self.file.write((",\n" if self.count else "") + _line(ev))
        self.count += 1

    def copy_to(self, out: TextIO) -> None:
        self.file.seek(0)
        shutil.copyfileobj(self.file, out)

    def close(self) -> None:
        self.file.close()


def export_perfetto(path: str | Path, out: str | Path) -> int:
    """Stream the recording at ``path`` into a trace at ``out``; returns the trace events
    written. The trace is written whole or not at all (a temporary file, then renamed), and
    memory holds the tasks alive at any moment, never the recording. RecordingError for a bad
    recording, OSError when ``out`` cannot be written."""
    target = Path(out)
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(RecordingReader(path))
        meta, body = _Spool(), _Spool()
        stack.callback(meta.close)
        stack.callback(body.close)
        _Builder(reader.header, body, meta).build(reader)
        tail = _tail({"displayTimeUnit": "ms",
                      "otherData": _other_data(reader.header, reader.path)})
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            # mkstemp's file is private (0600); the trace gets what any new file would.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write('{"traceEvents":[\n')
                meta.copy_to(f)
                if meta.count and body.count:
                    f.write(",\n")
                body.copy_to(f)
                f.write("\n]," + tail)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return meta.count + body.count
