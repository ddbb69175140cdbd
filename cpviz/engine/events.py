"""Everything cpviz knows arrives as one of these frozen events.

Probes produce them, the stream carries them, the Model folds them, and the recorder and exporters
write them. Times are seconds on the session clock (see :mod:`cpviz.engine.clock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["loop", "thread", "process", "ui", "probe", "server", "other"]
"""Who a thread or process is, as far as the core lanes care."""

ROLES: tuple[Role, ...] = ("loop", "thread", "process", "server", "ui", "probe", "other")


@dataclass(frozen=True, slots=True)
class TaskSpawn:
    """A task was created on the traced loop."""

    t: float
    #: Identity of the task for as long as it lives (``id()`` of the task object).
    task_id: int
    #: The task's name as the scheduler knows it.
    name: str
    #: Run the task belongs to (inherited through its context), or 0 outside any run.
    run_id: int
    #: Task that spawned it: the owner of the task group it was started in, or 0.
    parent_id: int


@dataclass(frozen=True, slots=True)
class TaskStep:
    """One step of a task: the scheduler ran it from ``start`` to ``end``.

    ``ready`` is when the step was scheduled (the task was woken); ``start - ready`` is the time the
    task spent ready but not running.
    """

    task_id: int
    ready: float
    start: float
    end: float
    #: True when the task finished during this step.
    final: bool = False


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one of cpviz's own threads or processes ran during a sampling interval."""

    role: Role
    #: OS thread id or process id.
    ident: int
    #: Logical CPU it ran on last, or -1 where the platform cannot tell.
    core: int
    #: CPU it used in the interval, in percent of one core.
    cpu_pct: float
    #: Human label, e.g. the thread's name.
    label: str = ""


@dataclass(frozen=True, slots=True)
class CoreSample:
    """The OS's per-core utilization over the interval ending at ``t``."""

    t: float
    #: Busy percentage of each logical CPU, in CPU order.
    percents: tuple[float, ...]
    #: cpviz's own threads and worker processes in that interval.
    placements: tuple[Placement, ...] = ()
    #: Context switches of this process and its children since the previous sample.
    ctx_switches: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a captured stack."""

    file: str
    line: int
    function: str
    #: The source line, stripped; empty if the file cannot be read.
    code: str
    #: "user" for workload or user code, "library" for stdlib and third party, "engine" for cpviz.
    origin: Literal["user", "library", "engine"] = "user"


#: Why a loop froze (see README, "Why the loop froze"): its own code blocked it, other threads
#: held the GIL, no CPU was free, a garbage collection ran, or the platform could not tell.
Cause = Literal["blocking", "gil", "cpu", "gc", "unknown"]


@dataclass(frozen=True, slots=True)
class ThreadAt:
    """Another thread of the observed program, and where it was, while the loop was frozen."""

    name: str
    #: OS thread id (the one /proc and the core lanes know).
    tid: int
    #: Innermost frame in user or workload code, or None if none was on its stack.
    frame: Frame | None
    #: The call it was in, when it can be told.
    call: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentStart:
    """The watchdog saw the loop stop turning, and this is what the loop thread was doing."""

    t: float
    incident_id: int
    #: Last time the loop was seen turning: the freeze began no earlier than this.
    since: float
    #: Innermost frame in user or workload code, or None if none was on the stack.
    culprit: Frame | None
    #: The call the culprit is blocked in, when it can be told (e.g. ``time.sleep``).
    blocking_call: str | None
    #: The whole stack, outermost first.
    stack: tuple[Frame, ...] = ()
    #: The task whose step is blocking the loop, or 0 if the loop is stuck outside any task.
    task_id: int = 0
    #: The program's other threads as the freeze was seen (cpviz's own probes left out).
    threads: tuple[ThreadAt, ...] = ()
    #: Why, as far as could be told while it was happening ("" where nobody classified it);
    #: the viewer fills this in from the OS's view of the loop thread.
    cause: str = ""
    #: How the freeze's time split between causes, as (cause, fraction of the freeze).
    shares: tuple[tuple[str, float], ...] = ()
    #: One line naming what is behind the cause (the threads holding the GIL, ...).
    cause_detail: str = ""


@dataclass(frozen=True, slots=True)
class IncidentEnd:
    """The loop turned again."""

    t: float
    incident_id: int
    duration_s: float
    #: The culprit seen most often while the loop stayed frozen, when that is not the one
    #: :class:`IncidentStart` named (its single snapshot can land on a brief last step).
    culprit: Frame | None = None
    blocking_call: str | None = None
    #: Stack samples taken during the freeze, the first one included.
    samples: int = 0
    #: Seconds of the freeze that garbage collections took, their oldest generation (-1: none)
    #: and the objects they collected (from ``gc.callbacks`` in the observed process).
    gc_s: float = 0.0
    gc_generation: int = -1
    gc_collected: int = 0
    #: The final word on why (see IncidentStart.cause), over the whole freeze.
    cause: str = ""
    shares: tuple[tuple[str, float], ...] = ()
    cause_detail: str = ""


@dataclass(frozen=True, slots=True)
class LoopLag:
    """How late the loop's heartbeat ran, the worst over a short window."""

    t: float
    lag_s: float


@dataclass(frozen=True, slots=True)
class RunStart:
    """A workload run began in the lab."""

    t: float
    run_id: int
    workload: str
    mode: str
    params: tuple[tuple[str, Any], ...]
    #: Units of work the run will do (for the progress bar), or 0 if unknown.
    total: int = 0


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Units of work a run has completed so far."""

    t: float
    run_id: int
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident as it appears in a run's result."""

    start_s: float
    duration_s: float
    file: str | None
    line: int | None
    function: str | None
    code: str | None
    blocking_call: str | None = None
    #: The incident this was (its id in the session's IncidentStart/IncidentEnd events).
    incident_id: int = 0
    #: Why the loop froze, how the time split between causes, and what was behind it.
    cause: str | None = None
    shares: tuple[tuple[str, float], ...] = ()
    cause_detail: str | None = None
    #: Seconds of the freeze spent in garbage collection.
    gc_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run measured. ``start_s`` values of incidents are relative to the run's start."""

    workload: str
    mode: str
    params: tuple[tuple[str, Any], ...]
    wall_s: float
    #: CPU seconds of this process and its children (pool workers included) during the run.
    cpu_s: float
    #: ``cpu_s / wall_s``: how many cores the run really kept busy.
    parallelism: float
    #: Wall time of the serial version divided by this run's, or None where none is known.
    speedup: float | None
    #: Where the speedup's serial wall time came from ("measured", "exact: N × L"), or None.
    speedup_basis: str | None
    incidents: tuple[IncidentRecord, ...]
    #: How the run ended: "completed", "stopped" or "failed: <reason>".
    outcome: str = "completed"
    #: Tasks and steps the tracer saw for this run (filled in by the Model).
    tasks: int = 0
    steps: int = 0
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``cpviz run --json`` prints."""
        return {
            "workload": self.workload,
            "mode": self.mode,
            "params": dict(self.params),
            "outcome": self.outcome,
            "wall_s": round(self.wall_s, 6),
            "cpu_s": round(self.cpu_s, 6),
            "parallelism": round(self.parallelism, 4),
            "speedup": None if self.speedup is None else round(self.speedup, 4),
            "speedup_basis": self.speedup_basis,
            "tasks": self.tasks,
            "steps": self.steps,
            "incidents": [
                {
                    "start_s": round(i.start_s, 6),
                    "duration_s": round(i.duration_s, 6),
                    "file": i.file,
                    "line": i.line,
                    "function": i.function,
                    "code": i.code,
                    "blocking_call": i.blocking_call,
                    "cause": i.cause,
                    "shares": {name: round(share, 3) for name, share in i.shares},
                    "cause_detail": i.cause_detail,
                    "gc_s": round(i.gc_s, 6),
                }
                for i in self.incidents
            ],
            **{k: v for k, v in self.extra},
        }


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run finished, was stopped, or failed."""

    t: float
    run_id: int
    result: RunResult


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Events were dropped because the stream was full: views should not pretend they happened."""

    t: float
    dropped: int


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure about a run's work at ``t``: a gauge the lab sampled (queue depth, latency p99)
    or a count the workload measured (lost updates). Never a workload's timing of its own steps."""

    t: float
    run_id: int
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One measured point of a sweep (oversubscribe, amdahl): the figures with ``x`` workers."""

    t: float
    run_id: int
    x: float
    #: Measured figures, and any the law predicts beside them, by name.
    figures: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Phase:
    """A named stretch of a run that the lab timed, e.g. a process pool's start-up."""

    #: When the phase ended.
    t: float
    run_id: int
    name: str
    start: float
    #: One line of what it was, e.g. "spawn, 2 workers".
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Waiter:
    """A task or thread that is waiting and cannot go on, and what it waits for."""

    kind: Literal["task", "thread"]
    name: str
    #: Innermost frame in user or workload code, where it waits.
    frame: Frame | None
    #: What it waits on, as named in the code (e.g. ``lock_b``), when it can be told.
    waits_on: str | None = None
    #: Who holds that, when the primitive records it.
    held_by: str | None = None


@dataclass(frozen=True, slots=True)
class StallStart:
    """No task of a run has made progress for longer than the threshold, yet some are pending."""

    t: float
    run_id: int
    stall_id: int
    #: Last progress seen: the stall began no earlier than this.
    since: float
    waiters: tuple[Waiter, ...]


@dataclass(frozen=True, slots=True)
class StallEnd:
    """The run made progress again, or ended."""

    t: float
    run_id: int
    stall_id: int


@dataclass(frozen=True, slots=True)
class Observed:
    """The observed process started, or ended (crashed, was killed, or exited on its own)."""

    t: float
    pid: int
    #: "started", "exited", or "note" (something the probes cannot do here, said once).
    what: str
    #: For "started": the interpreter (e.g. "CPython 3.11.7, GIL on"). For "exited": how it
    #: ended, e.g. "killed by SIGSEGV" or "exited with status 1", and its last words, if any.
    detail: str = ""
    #: For "exited": the exit status as the OS gave it (negative: the signal that ended it).
    status: int = 0


@dataclass(frozen=True, slots=True)
class Output:
    """A line the observed program wrote to its stdout or stderr (its own output, kept apart
    from cpviz's so ``--json`` stays clean and the screen can show it in a pane)."""

    t: float
    text: str


@dataclass(frozen=True, slots=True)
class OsRowName:
    """Who a thread or process row is. Said when the row first appears, when it changes, and
    every few seconds, so a recording begun mid-session learns its rows' names too."""

    kind: Literal["thread", "process"]
    #: OS thread id (a thread of the observed process) or process id (one below it).
    ident: int
    label: str
    #: Its role ("loop", "thread", "probe", ...; "" when the observed side did not say).
    role: str
    #: What the platform does not let this row tell ("" when it tells everything).
    note: str = ""


@dataclass(frozen=True, slots=True)
class OsSamples:
    """Thread and process rows as the viewer's sampler read them from the OS, a batch of
    samples at a time (about 0.1 s while a run goes), so recordings stay small and replays
    show the same rows (see :mod:`cpviz.engine.recording.os_samples`)."""

    #: End of the last sample.
    t: float
    #: Each sample's length in microseconds, oldest first; the first begins their sum before t.
    steps_us: tuple[int, ...]
    #: Threads of the observed process: (tid, one token per sample).
    threads: tuple[tuple[int, str], ...] = ()
    #: Processes below it: (pid, one token per sample).
    processes: tuple[tuple[int, str], ...] = ()
    names: tuple[OsRowName, ...] = ()


Event = (
    TaskSpawn
    | TaskStep
    | CoreSample
    | IncidentStart
    | IncidentEnd
    | LoopLag
    | RunStart
    | RunProgress
    | RunEnd
    | StreamGap
    | Metric
    | SweepPoint
    | Phase
    | StallStart
    | StallEnd
    | Observed
    | Output
    | OsSamples
)
