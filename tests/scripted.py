"""A fixed, plausible scene as engine events, so UI tests never depend on the machine or the clock.

Two cores, three runs on one session clock:

* ``cpu:processes`` (run 1) from 0.5 s to 2.5 s: four chunks awaited on the loop while worker
  processes fill both cores.
* ``io:concurrent`` (run 2) from 3.0 s: 40 fetches fan out at once and wait 1.5–3.4 s each.
* ``blocking:sync-sleep`` (run 3) from 8.0 s: eight tickers step every 100 ms while a waiter
  calls ``time.sleep`` on the loop twice (10.0–10.6 s and 11.5–13.0 s), freezing everyone.

Every number is written down here or follows from a formula with fixed inputs.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from cpviz.app import CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.contract import ParamInfo, WorkloadInfo
from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentRecord,
    IncidentStart,
    LoopLag,
    Placement,
    RunEnd,
    RunProgress,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.source import ScriptedController, ScriptedSource
from cpviz.screenshot import settle

CORES = 2
#: Clock time for the main-screen snapshot: the I/O fan-out is under way.
MAIN_AT = 5.0
#: Clock time for the alarm snapshot: inside the second freeze (flash phase 0).
ALARM_AT = 12.2
#: Where the scripted freezes happen.
FREEZES: tuple[tuple[int, float, float], ...] = ((1, 10.0, 10.6), (2, 11.5, 13.0))
CULPRIT = Frame(
    file="cpviz/workloads/blocking.py",
    line=57,
    function="waiter",
    code="time.sleep(block_s)",
    origin="user",
)
END = 20.0

IO_RUN, CPU_RUN, BLOCK_RUN = 2, 1, 3
LOOP_TID, UI_TID, PROBE_TID = 4242, 4243, 4244


def workload_infos() -> tuple[WorkloadInfo, ...]:
    """Three workloads shaped like the real catalogue (io has a ``real`` parameter)."""
    return (
        WorkloadInfo(
            key="io",
            title="I/O fan-out",
            modes=("serial", "concurrent", "bounded", "threads"),
            params=(
                ParamInfo("n", "int", 40, 1, 10000, "calls to make"),
                ParamInfo("latency_s", "float", 2.0, 0.001, 10.0, "simulated call latency"),
                ParamInfo("real", "bool", False, None, None, "call a local HTTP server"),
            ),
            explanation=(
                "Serially each call waits for the one before. Concurrently all calls wait at "
                "once: watch the timeline fill with waiting rows while the cores stay idle."
            ),
        ),
        WorkloadInfo(
            key="cpu",
            title="CPU-bound work",
            modes=("serial", "loop", "threads", "processes"),
            params=(ParamInfo("chunks", "int", 4, 1, 64, "pieces of work"),),
            explanation=(
                "Pure-Python arithmetic. On the loop or in threads it keeps about one core busy; "
                "in processes every lane fills."
            ),
        ),
        WorkloadInfo(
            key="blocking",
            title="A blocking call on the loop",
            modes=("sync-sleep", "async-sleep", "to-thread"),
            params=(ParamInfo("block_s", "float", 1.5, 0.05, 10.0, "how long to block"),),
            explanation=(
                "time.sleep() on the event loop freezes every coroutine: the alarm names the "
                "line, and the tickers pile up as ready but not running."
            ),
        ),
    )


def _cores(t_end: float) -> list[Event]:
    events: list[Event] = []
    k = 0
    t = 0.25
    while t <= t_end + 1e-9:
        wiggle = (k * 7) % 5
        placements = [
            Placement("ui", UI_TID, 1, 6.0 + wiggle, "MainThread"),
            Placement("probe", PROBE_TID, 0, 2.0, "cpviz-sampler"),
        ]
        if 0.5 < t <= 2.75:  # worker processes fill both cores
            pcts = (97.0 + wiggle * 0.5, 95.0 + wiggle)
            placements += [
                Placement("process", 5001, 0, 96.0, "worker-1"),
                Placement("process", 5002, 1, 94.0, "worker-2"),
                Placement("loop", LOOP_TID, 0, 3.0, "cpviz-lab"),
            ]
        elif 3.0 < t <= 6.75:  # the loop spins up 40 fetches, then mostly waits
            loop = 38.0 if t <= 3.5 else 9.0 + wiggle
            pcts = (loop + 4.0, 10.0 + wiggle)
            placements.append(Placement("loop", LOOP_TID, 0, loop, "cpviz-lab"))
        elif 8.0 < t <= 14.0:  # tickers keep the loop lightly busy; time.sleep uses no CPU
            frozen = any(a < t <= b for _, a, b in FREEZES)
            loop = 1.0 if frozen else 14.0 + wiggle
            pcts = (loop + 3.0, 9.0 + wiggle)
            placements.append(Placement("loop", LOOP_TID, 1 if frozen else 0, loop, "cpviz-lab"))
        else:
            pcts = (3.0 + wiggle, 5.0 + wiggle)
        events.append(
            CoreSample(t, pcts, tuple(placements), ctx_switches=120 + 40 * wiggle)
        )
        k += 1
        t = round(0.25 * (k + 1), 6)
    return events


def _lag(t_end: float) -> list[Event]:
    events: list[Event] = []
    k = 1
    while 0.5 * k <= t_end:
        t = 0.5 * k
        lag = 0.0012 + 0.0001 * (k % 4)
        for _, a, b in FREEZES:
            if b < t <= b + 0.5:
                lag = b - a  # the heartbeat that finally ran was this late
            if a < t <= b:
                lag = -1.0  # no heartbeat while frozen
        if lag >= 0:
            events.append(LoopLag(t, lag))
        k += 1
    return events


def _cpu_run() -> list[Event]:
    root = 1000
    events: list[Event] = [
        RunStart(0.5, CPU_RUN, "cpu", "processes", (("chunks", 4),), total=4),
        TaskSpawn(0.5, root, "cpu:processes", CPU_RUN, 0),
        TaskStep(root, 0.5, 0.5, 0.504),
    ]
    for i in range(4):
        tid = root + 1 + i
        spawn = 0.504 + 0.001 * i
        done = 2.1 + 0.12 * i
        events += [
            TaskSpawn(spawn, tid, f"chunk-{i}", CPU_RUN, root),
            TaskStep(tid, spawn, spawn + 0.001, spawn + 0.003),
            TaskStep(tid, done, done + 0.002, done + 0.004, final=True),
            RunProgress(done + 0.004, CPU_RUN, i + 1, 4),
        ]
    events.append(TaskStep(root, 2.465, 2.47, 2.472, final=True))
    result = RunResult(
        workload="cpu", mode="processes", params=(("chunks", 4),),
        wall_s=1.98, cpu_s=3.83, parallelism=1.93, speedup=1.87,
        speedup_basis="measured", incidents=(),
    )
    events.append(RunEnd(2.5, CPU_RUN, result))
    return events


def io_latency(i: int) -> float:
    """Each fetch's wait: 1.5–3.4 s, spread by a fixed formula."""
    return 1.5 + ((i * 37) % 20) / 10


def _io_run(n: int = 40) -> list[Event]:
    root = 2000
    t0 = 3.0
    events: list[Event] = [
        RunStart(t0, IO_RUN, "io", "concurrent", (("n", n), ("latency_s", 2.0), ("real", False)),
                 total=n),
        TaskSpawn(t0, root, "io:concurrent", IO_RUN, 0),
        TaskStep(root, t0, t0, t0 + 0.2),
    ]
    finishes: list[float] = []
    for i in range(n):
        tid = root + 1 + i
        spawn = t0 + 0.005 * i
        # The first steps queue behind the spawning loop: ready at spawn, run after it.
        start = t0 + 0.2 + 0.002 * i
        events += [
            TaskSpawn(spawn, tid, f"fetch-{i:02d}", IO_RUN, root),
            TaskStep(tid, spawn, start, start + 0.001),
        ]
        ready = start + io_latency(i)
        end = ready + 0.003
        events.append(TaskStep(tid, ready, ready + 0.002, end, final=True))
        finishes.append(end)
    for done, end in enumerate(sorted(finishes), start=1):
        events.append(RunProgress(end, IO_RUN, done, n))
    last = max(finishes)
    events.append(TaskStep(root, last, last + 0.001, last + 0.002, final=True))
    wall = last + 0.01 - t0
    result = RunResult(
        workload="io", mode="concurrent", params=(("n", n), ("latency_s", 2.0), ("real", False)),
        wall_s=wall, cpu_s=0.21, parallelism=0.21 / wall, speedup=n * 2.0 / wall,
        speedup_basis=f"exact: {n} × 2 s", incidents=(),
    )
    events.append(RunEnd(last + 0.01, IO_RUN, result))
    return events


def _frozen_at(t: float) -> tuple[float, float] | None:
    for _, a, b in FREEZES:
        if a <= t < b:
            return a, b
    return None


def _blocking_run(tickers: int = 8) -> list[Event]:
    root, waiter = 3000, 3001
    t0, t_end = 8.0, 14.0
    params = (("block_s", 1.5),)
    events: list[Event] = [
        RunStart(t0, BLOCK_RUN, "blocking", "sync-sleep", params, total=2),
        TaskSpawn(t0, root, "blocking:sync-sleep", BLOCK_RUN, 0),
        TaskStep(root, t0, t0, t0 + 0.002),
        TaskSpawn(t0 + 0.002, waiter, "waiter", BLOCK_RUN, root),
        TaskStep(waiter, t0 + 0.002, t0 + 0.003, t0 + 0.004),
    ]
    for i, (incident_id, a, b) in enumerate(FREEZES):
        events += [
            TaskStep(waiter, a - 0.001, a, b),
            IncidentStart(
                t=a + 0.15, incident_id=incident_id, since=a, culprit=CULPRIT,
                blocking_call="time.sleep",
                stack=(
                    Frame("cpviz/engine/lab.py", 210, "_run", "await wl.run(ctx)", "engine"),
                    CULPRIT,
                    Frame("<built-in>", 0, "sleep", "", "library"),
                ),
                task_id=waiter,
            ),
            IncidentEnd(b, incident_id, b - a),
            RunProgress(b, BLOCK_RUN, i + 1, 2),
        ]
    events.append(TaskStep(waiter, 13.0, 13.001, 13.002, final=True))
    for j in range(tickers):
        tid = 3100 + j
        spawn = t0 + 0.003 + 0.001 * j
        events.append(TaskSpawn(spawn, tid, f"ticker-{j}", BLOCK_RUN, root))
        k = 0
        while True:
            ready = round(t0 + 0.1 * (k + 1), 6) + 0.0005 * j
            if ready >= t_end - 0.2:
                break
            frozen = _frozen_at(ready)
            start = (frozen[1] + 0.0004 * j) if frozen else ready + 0.0002
            if frozen and k > 0:
                # Only the first wake-up during a freeze is pending; later ones coalesce.
                prev = round(t0 + 0.1 * k, 6) + 0.0005 * j
                if _frozen_at(prev) == frozen:
                    k += 1
                    continue
            events.append(TaskStep(tid, ready, start, start + 0.0008))
            k += 1
        events.append(TaskStep(tid, t_end - 0.1, t_end - 0.1, t_end - 0.099, final=True))
    events.append(TaskStep(root, t_end - 0.01, t_end - 0.01, t_end - 0.009, final=True))
    result = RunResult(
        workload="blocking", mode="sync-sleep", params=params,
        wall_s=t_end - t0, cpu_s=0.32, parallelism=0.32 / (t_end - t0), speedup=None,
        speedup_basis=None,
        incidents=tuple(
            IncidentRecord(a - t0, b - a, CULPRIT.file, CULPRIT.line, CULPRIT.function,
                           CULPRIT.code, "time.sleep")
            for _, a, b in FREEZES
        ),
    )
    events.append(RunEnd(t_end, BLOCK_RUN, result))
    return events


def scene_events() -> list[Event]:
    """The whole scene, unsorted (ScriptedSource sorts by event time)."""
    return [*_cores(END), *_lag(END), *_cpu_run(), *_io_run(), *_blocking_run()]


def make_app(
    at: float,
    *,
    start: tuple[str, str | None] | None = None,
    start_settings: dict[str, Any] | None = None,
    min_size: tuple[int, int] = (80, 24),
) -> tuple[CpvizApp, ManualClock, ScriptedController]:
    """An app over the scripted scene with its clock stopped at ``at``."""
    clock = ManualClock(at)
    source = ScriptedSource(scene_events(), clock, CORES)
    controller = ScriptedController(workload_infos())
    app = CpvizApp(
        source, controller, start=start, start_settings=start_settings, min_size=min_size
    )
    return app, clock, controller


async def settled(pilot: Pilot[None]) -> None:
    """Two frames of a replay: the first may change a view's height (the measures view sizes
    itself to its run), and the views lay out again; the second draws on the settled layout."""
    app = pilot.app
    assert isinstance(app, CpvizApp)
    for _ in range(2):
        await settle(app)
        await pilot.pause()
