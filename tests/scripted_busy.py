"""A big, busy scene as engine events: thousands of tasks on many cores, on one session clock.

For the screen's worst case (issue 11: 10,000 tasks and 64 cores still read; a frame of 1000
task rows and 64 cores costs at most 8 ms). Everything follows from fixed formulas:

* ``cpu:processes`` (run 1) from 0.2 s to 1.0 s, ended: a root and four chunks.
* ``io:concurrent`` (run 2) from 0.5 s, still going: ``tasks`` fetches spawned over the first
  second, each stepping every ``period`` seconds with a small ready delay, some finishing.
* cpviz's own tasks (``cpviz:dispatch`` and a pool warm-up helper) outside and inside runs.
* Core samples at 10 Hz: a load wave that moves across the cores, worker processes on some.
* One freeze of the loop from 6.0 s to 6.4 s.

The bench (``bench/frame_cost.py``) uses it too, so the figures and the snapshot are one scene.
"""

from __future__ import annotations

from cpviz.app import CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    Metric,
    Placement,
    RunEnd,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.source import ScriptedController, ScriptedSource
from tests.scripted import workload_infos

#: The freeze in the scene.
FREEZE = (6.0, 6.4)
CULPRIT = Frame("app.py", 12, "handler", "time.sleep(0.4)", "user")
CPU_RUN, IO_RUN = 1, 2
#: Task ids of cpviz's own tasks in the scene (hidden until the toggle shows them).
OWN_IDS = (90_001, 90_002)


def _cores(cores: int, t_end: float) -> list[Event]:
    events: list[Event] = []
    k = 1
    while 0.1 * k <= t_end + 1e-9:
        t = round(0.1 * k, 6)
        # A wave of load sweeping across the cores, every core a little busy.
        pcts = tuple(
            float(min(100, 5 + (37 * ((c + k) % 7) + 11 * (c % 5)) % 96)) for c in range(cores)
        )
        placements = [
            Placement("loop", 4242, k % cores, 35.0, "cpviz-lab"),
            Placement("ui", 4243, (k + 1) % cores, 8.0, "MainThread"),
        ]
        placements += [
            Placement("process", 5000 + w, (3 * w + k) % cores, 90.0, f"worker-{w}")
            for w in range(min(8, cores))
        ]
        events.append(CoreSample(t, pcts, tuple(placements), ctx_switches=400 + 7 * (k % 9)))
        k += 1
    return events


def _cpu_run() -> list[Event]:
    root = 1000
    events: list[Event] = [
        RunStart(0.2, CPU_RUN, "cpu", "processes", (("chunks", 4),), total=4),
        TaskSpawn(0.2, root, "cpu:processes", CPU_RUN, 0),
        TaskStep(root, 0.2, 0.2, 0.201),
        TaskSpawn(0.21, OWN_IDS[1], "cpviz.agent.lab._RunPool.warm_up.<locals>.one", CPU_RUN,
                  root),
        TaskStep(OWN_IDS[1], 0.21, 0.211, 0.212),
        TaskStep(OWN_IDS[1], 0.3, 0.301, 0.302, final=True),
    ]
    for i in range(4):
        tid = root + 1 + i
        events += [
            TaskSpawn(0.22 + 0.01 * i, tid, f"chunk-{i}", CPU_RUN, root),
            TaskStep(tid, 0.22 + 0.01 * i, 0.23 + 0.01 * i, 0.24 + 0.01 * i),
            TaskStep(tid, 0.8 + 0.02 * i, 0.81 + 0.02 * i, 0.82 + 0.02 * i, final=True),
        ]
    events.append(TaskStep(root, 0.95, 0.95, 0.96, final=True))
    result = RunResult(workload="cpu", mode="processes", params=(("chunks", 4),), wall_s=0.8,
                       cpu_s=1.5, parallelism=1.9, speedup=1.8, speedup_basis="measured",
                       incidents=())
    events.append(RunEnd(1.0, CPU_RUN, result))
    return events


def _io_run(tasks: int, t_end: float, period: float) -> list[Event]:
    root = 2000
    events: list[Event] = [
        RunStart(0.5, IO_RUN, "io", "concurrent", (("n", tasks),), total=tasks),
        TaskSpawn(0.5, root, "io:concurrent", IO_RUN, 0),
        TaskStep(root, 0.5, 0.5, 0.51),
    ]
    a, b = FREEZE
    for i in range(tasks):
        tid = root + 1 + i
        spawn = 0.5 + (i % 1000) / 1000
        events.append(TaskSpawn(spawn, tid, f"fetch-{i}", IO_RUN, root))
        # A few in each hundred finish early; the rest keep stepping to the end.
        finish = t_end + 1 if (i + 11) % 100 >= 3 else 2.0 + (i % 7) * 0.3
        t = spawn + (i % 17) * period / 17
        while t < min(finish, t_end):
            ready = t
            start = b + 0.0001 * (i % 50) if a <= ready < b else ready + 0.0003 * (i % 9)
            events.append(TaskStep(tid, ready, start, start + 0.0005,
                                   final=finish <= t + period))
            t = max(t + period, start + 0.001)
    for k in range(1, int(t_end * 20)):
        events.append(Metric(k / 20, IO_RUN, "in flight", float(tasks - (k % 40))))
    return events


def _own(t_end: float) -> list[Event]:
    """The lab's dispatcher: a task outside any run, stepping at every command."""
    events: list[Event] = [TaskSpawn(0.05, OWN_IDS[0], "cpviz:dispatch", 0, 0)]
    t = 0.05
    while t < t_end:
        events.append(TaskStep(OWN_IDS[0], t, t + 0.0001, t + 0.0003))
        t += 0.5
    return events


def _freeze() -> list[Event]:
    a, b = FREEZE
    return [
        IncidentStart(t=a + 0.1, incident_id=1, since=a, culprit=CULPRIT,
                      blocking_call="time.sleep", stack=(CULPRIT,), task_id=2001),
        IncidentEnd(b, 1, b - a),
    ]


def busy_events(tasks: int, cores: int, t_end: float, period: float = 0.5) -> list[Event]:
    """The whole scene up to ``t_end``, unsorted (ScriptedSource sorts by event time)."""
    return [*_cores(cores, t_end), *_cpu_run(), *_io_run(tasks, t_end, period), *_own(t_end),
            *_freeze()]


def make_busy_app(
    at: float, *, tasks: int = 10_000, cores: int = 64, t_end: float = 8.0, period: float = 0.5
) -> tuple[CpvizApp, ManualClock]:
    """An app over the busy scene with its clock stopped at ``at``."""
    clock = ManualClock(at)
    source = ScriptedSource(busy_events(tasks, cores, t_end, period), clock, cores)
    app = CpvizApp(source, ScriptedController(workload_infos()))
    return app, clock
