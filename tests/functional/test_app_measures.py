"""The app's newer views and keys: measured gauges, sweeps, the stall alarm, live parameters,
pinning and the tenth workload key. Scripted events, a manual clock and a recording controller."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from cpviz.app import CpvizApp, live_step
from cpviz.engine.clock import ManualClock
from cpviz.engine.contract import ParamInfo, WorkloadInfo
from cpviz.engine.events import (
    Event,
    Frame,
    Metric,
    Phase,
    RunStart,
    StallStart,
    SweepPoint,
    Waiter,
)
from cpviz.engine.source import ScriptedController, ScriptedSource
from cpviz.widgets import BlockingAlarm, Measures

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def infos(count: int = 3) -> tuple[WorkloadInfo, ...]:
    pipeline = WorkloadInfo(
        "pipeline", "Pipeline", ("steady", "burst"),
        (
            ParamInfo("k", "int", 2, 1, 64, "consumers", True),
            ParamInfo("buffer", "int", 16, 1, 4096, "channel size", True),
            ParamInfo("rate", "float", 100.0, 1.0, 10000.0, "messages a second"),
        ),
        "Producer, channel, consumers.",
    )
    amdahl = WorkloadInfo("amdahl", "Amdahl", ("processes",), (), "The law.")
    deadlock = WorkloadInfo("deadlock", "Deadlock", ("tasks",), (), "Opposite orders.")
    extra = tuple(
        WorkloadInfo(f"w{i}", f"W{i}", ("a",), (), "Filler.") for i in range(max(0, count - 3))
    )
    return (pipeline, amdahl, deadlock, *extra)


def events() -> list[Event]:
    out: list[Event] = [
        RunStart(0.5, 1, "pipeline", "steady", (("k", 2),), 0),
        RunStart(0.5, 2, "amdahl", "processes", (), 0),
        RunStart(0.5, 3, "deadlock", "tasks", (), 0),
        Phase(1.0, 2, "startup", 0.6, "spawn, 2 workers"),
    ]
    for i in range(40):
        t = 1.0 + i * 0.05
        out.append(Metric(t, 1, "queue depth", float(min(16, i))))
        out.append(Metric(t, 1, "unacked", float(i % 5)))
    for n, speedup in ((1, 1.0), (2, 1.6), (3, 1.7)):
        out.append(SweepPoint(1.0 + n, 2, float(n),
                              (("speedup", speedup), ("law", 1 / (0.2 + 0.8 / n)))))
    frame = Frame("cpviz/workloads/deadlock.py", 42, "take", "async with lock_b:", "user")
    out.append(StallStart(3.5, 3, 1, 2.4, (
        Waiter("task", "left", frame, "lock_b", "right"),
        Waiter("task", "right", frame, "lock_a", "left"),
    )))
    return out


def make(at: float, count: int = 3) -> tuple[CpvizApp, ScriptedController]:
    controller = ScriptedController(infos(count))
    app = CpvizApp(ScriptedSource(events(), ManualClock(at), 2), controller)
    return app, controller


async def test_gauges_show_for_the_selected_workload_and_hide_for_others() -> None:
    app, _ = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        measures = app.query_one(Measures)
        assert measures.display
        assert [line for line, _ in measures._lines] == ["gauge", "gauge"]
        assert "pipeline:steady" in str(measures.border_title)
        await pilot.press("3")  # the deadlock workload measured no gauges: nothing to show
        app._frame()
        await pilot.pause()
        assert not measures.display


async def test_a_sweep_is_a_table_with_the_law_beside_the_measurements() -> None:
    app, _ = make(5.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "t")  # t: the numbers instead of the chart
        app._frame()
        await pilot.pause()
        measures = app.query_one(Measures)
        kinds = [kind for kind, _ in measures._lines]
        assert kinds == ["phase", "sweep-x", "sweep", "sweep"]
        width = measures._content_size().width
        law = measures._draw(3, width).text
        assert law.startswith("law") and "1.67" in law  # 1 / (0.2 + 0.8 / 2)
        assert "spawn, 2 workers" in measures._draw(0, width).text


async def test_a_stall_lights_the_alarm_and_names_who_waits_on_what() -> None:
    app, _ = make(4.0)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        alarm = app.query_one(BlockingAlarm)
        assert alarm.has_class("-stalled")
        assert "NO PROGRESS" in str(alarm.border_title)
        width, height = alarm.content_size
        status = alarm._status(width).plain
        assert "left ↔ right" in status
        lines = [t.plain for t in alarm._history(width, height)]
        assert any("left waits on lock_b (held by right)" in line for line in lines)
        assert any("deadlock.py:42" in line for line in lines)


async def test_bracket_keys_step_live_parameters_and_reach_a_running_run() -> None:
    app, controller = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right_square_bracket")  # not running: only the next start changes
        assert not [c for c in controller.calls if c[0] == "adjust"]
        await pilot.press("1")  # start pipeline
        await pilot.press("right_square_bracket", "right_curly_bracket", "left_curly_bracket")
        adjusts = [(c[2], c[3][c[2]]) for c in controller.calls if c[0] == "adjust"]
        assert adjusts == [("k", 4), ("buffer", 32), ("buffer", 16)]
        started = next(c for c in controller.calls if c[0] == "start")
        assert started[3]["k"] == 3  # the step taken before the start went into it


async def test_c_pins_to_one_core_and_back() -> None:
    app, controller = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert "pinned to 1 core" in str(app.sub_title)
        await pilot.press("c")
        assert "pinned" not in str(app.sub_title)
        pins = [c[3]["cores"] for c in controller.calls if c[0] == "pin"]
        assert pins == [1, None]


async def test_zero_selects_the_tenth_workload() -> None:
    app, controller = make(3.0, count=10)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("0")
        assert app.selected == 9
        assert [c[1] for c in controller.calls if c[0] == "start"] == ["w6"]


def test_live_steps_are_small_over_small_ranges_and_double_over_large_ones() -> None:
    assert live_step(2, 1, 64, +1) == 3 and live_step(1, 1, 64, -1) == 1
    assert live_step(16, 1, 4096, +1) == 32 and live_step(16, 1, 4096, -1) == 8
    assert live_step(4096, 1, 4096, +1) == 4096


def notes(app: CpvizApp) -> list[str]:
    """The notifications shown so far, oldest first."""
    return [n.message for n in app._notifications]


async def test_curly_brackets_say_the_buffer_size_they_set() -> None:
    app, _ = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right_curly_bracket")  # not running: for the next run
        assert notes(app)[-1] == "buffer = 32 for the next run"
        await pilot.press("1", "left_curly_bracket")
        assert notes(app)[-1] == "buffer = 16 now"
        for _ in range(5):
            await pilot.press("left_curly_bracket")
        assert notes(app)[-1] == "buffer = 1, the least it can be"


async def test_r_on_a_workload_with_no_real_mode_says_so() -> None:
    app, _ = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        assert notes(app)[-1].startswith("pipeline has no real mode")


async def test_m_during_a_run_says_the_new_mode_is_for_the_next_run() -> None:
    app, controller = make(3.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")  # nothing running: the listing says it all
        assert not notes(app)
        await pilot.press("1", "m")
        assert notes(app)[-1] == "pipeline: the next run uses steady; the one going keeps its mode"
        started = [c for c in controller.calls if c[0] == "start"]
        assert [c[2] for c in started] == ["burst"]
        explain = app.runs.query_one("#explain", Static)
        assert "m cycles modes for the next run: [steady] burst" in str(explain.render())
