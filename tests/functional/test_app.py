"""Functional tests of the app's keys against a scripted source, manual clock and controller."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from cpviz.app import DEFAULT_WINDOW, CpvizApp
from cpviz.engine.events import CoreSample, LoopLag, TaskSpawn, TaskStep
from cpviz.widgets import (
    BlockingAlarm,
    CoreLanes,
    HelpScreen,
    RunPanel,
    Timeline,
    TooSmallScreen,
)
from cpviz.widgets.blocking_alarm import flash_phase
from cpviz.widgets.core_lanes import FIGURES_EVERY_S
from cpviz.widgets.os_rows import OsRows
from cpviz.widgets.timeline import LABEL_W
from tests.scripted import ALARM_AT, MAIN_AT, make_app

SIZE = (120, 40)

# Async tests run on anyio's pytest plugin (no extra dependency), on asyncio like Textual.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def starts(controller) -> list[tuple[str, str, dict[str, object]]]:
    return [(key, mode, params) for op, key, mode, params in controller.calls if op == "start"]


def showing(app: CpvizApp, kind: type) -> bool:
    """Which screen is on top (a call, so mypy does not carry a narrowing past a key press)."""
    return isinstance(app.screen, kind)


def is_paused(app: CpvizApp) -> bool:
    return app.paused


def message(app: CpvizApp) -> str:
    screen = app.screen
    assert isinstance(screen, TooSmallScreen)
    return screen._message()


def ops(controller) -> list[tuple[str, str]]:
    return [(op, key) for op, key, _, _ in controller.calls]


async def test_number_keys_start_the_workload_with_its_first_mode_and_defaults() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await pilot.press("2")
        await pilot.press("3")
        assert starts(controller) == [
            ("io", "serial", {"n": 40, "latency_s": 2.0, "real": False}),
            ("cpu", "serial", {"chunks": 4}),
            ("blocking", "sync-sleep", {"block_s": 1.5}),
        ]
        assert app.selected == 2
        assert controller.running() == {"io", "cpu", "blocking"}


async def test_pressing_a_running_workloads_key_stops_it() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "2")
        assert ops(controller) == [("start", "cpu"), ("stop", "cpu")]
        await pilot.press("2")
        assert ops(controller)[-1] == ("start", "cpu")


async def test_keys_beyond_the_catalogue_do_nothing() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "9")
        assert controller.calls == []
        assert app.selected == 0


async def test_m_cycles_the_selected_workloads_mode_and_wraps() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "2")  # select cpu (start, then stop)
        await pilot.press("m")
        await pilot.press("2")
        assert starts(controller)[-1][:2] == ("cpu", "loop")
        await pilot.press("2", "m", "m", "m", "2")  # stop, then threads → processes → serial
        assert starts(controller)[-1][:2] == ("cpu", "serial")
        # The other workloads keep their own mode.
        await pilot.press("1")
        assert starts(controller)[-1][:2] == ("io", "serial")


async def test_m_shows_in_the_run_panel() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        panel = app.query_one(RunPanel)
        assert panel.choices[0].mode == "concurrent"
        assert panel.selected == 0


async def test_r_toggles_real_only_for_workloads_that_have_it() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r", "1")
        assert starts(controller)[-1] == ("io", "serial", {"n": 40, "latency_s": 2.0, "real": True})
        await pilot.press("1", "r", "1")
        assert starts(controller)[-1][2]["real"] is False
        assert app.query_one(RunPanel).choices[0].real is False
        # cpu has no real parameter: r changes nothing it is started with.
        await pilot.press("2", "2", "r", "2")
        assert starts(controller)[-1] == ("cpu", "serial", {"chunks": 4})
        assert app.query_one(RunPanel).choices[1].real is None


async def test_start_argument_starts_a_workload_on_mount() -> None:
    app, _, controller = make_app(MAIN_AT, start=("blocking", "to-thread"))
    async with app.run_test(size=SIZE):
        assert starts(controller) == [("blocking", "to-thread", {"block_s": 1.5})]
        assert app.selected == 2


async def test_start_settings_override_the_started_workloads_params() -> None:
    app, _, controller = make_app(
        MAIN_AT, start=("io", "concurrent"), start_settings={"n": 10, "real": True}
    )
    async with app.run_test(size=SIZE):
        # Typed once by the command line (Workload.resolve); the app passes them on as they are.
        assert starts(controller) == [
            ("io", "concurrent", {"n": 10, "latency_s": 2.0, "real": True})
        ]
        assert app.query_one(RunPanel).choices[0].real is True


async def test_an_unknown_start_mode_starts_nothing() -> None:
    app, _, controller = make_app(MAIN_AT, start=("cpu", "warp-drive"))
    async with app.run_test(size=SIZE):
        assert controller.calls == []


async def test_space_freezes_display_time_while_the_model_keeps_folding() -> None:
    app, clock, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        assert app.now == MAIN_AT
        await pilot.press("space")
        assert is_paused(app)
        assert "PAUSED" in app.sub_title
        version = app.model.version
        clock.set(ALARM_AT)
        app._frame()
        assert app.now == MAIN_AT  # display stands still …
        assert app.model.version > version  # … while events keep arriving
        assert app.model.open_incident is not None
        assert app.query_one(Timeline).now == MAIN_AT
        await pilot.press("space")
        app._frame()
        assert not is_paused(app)
        assert "PAUSED" not in app.sub_title
        assert app.now == ALARM_AT
        assert app.query_one(BlockingAlarm).now == ALARM_AT


async def test_plus_and_minus_zoom_the_timeline_within_limits() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)
        assert app.window_s == DEFAULT_WINDOW
        await pilot.press("plus")
        assert app.window_s < DEFAULT_WINDOW
        assert timeline.window_s == app.window_s
        await pilot.press("minus", "minus")
        assert app.window_s > DEFAULT_WINDOW
        await pilot.press("equals_sign")
        assert app.window_s == DEFAULT_WINDOW
        for _ in range(20):
            await pilot.press("minus")
        assert app.window_s == 60.0
        for _ in range(20):
            await pilot.press("plus")
        assert app.window_s == 0.25
        assert "250 ms" in app.sub_title


async def test_question_mark_opens_help_and_escape_closes_it() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert showing(app, HelpScreen)
        await pilot.press("escape")
        assert not showing(app, HelpScreen)
        await pilot.press("question_mark", "question_mark")
        assert not showing(app, HelpScreen)
        # q on the help screen closes help, not the app.
        await pilot.press("question_mark", "q")
        assert not showing(app, HelpScreen)
        assert app.is_running
        assert ("close", "") not in ops(controller)


async def test_q_exits_and_closes_the_controller() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "q")
        await pilot.pause()
        assert not app.is_running
    assert ops(controller) == [("start", "io"), ("close", "")]


async def test_ctrl_c_exits_and_closes_the_controller_once() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert ops(controller).count(("close", "")) == 1


async def test_close_happens_even_when_the_app_ends_another_way() -> None:
    app, _, controller = make_app(MAIN_AT)
    async with app.run_test(size=SIZE):
        app.exit()
    assert ops(controller) == [("close", "")]


async def test_too_small_terminal_shows_the_needed_size_and_recovers() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        assert showing(app, TooSmallScreen)
        assert "80×24" in message(app)
        assert "60×15" in message(app)
        await pilot.resize_terminal(70, 20)
        await pilot.pause()
        assert showing(app, TooSmallScreen)
        assert "70×20" in message(app)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not showing(app, TooSmallScreen)
        await pilot.resize_terminal(79, 30)
        await pilot.pause()
        assert showing(app, TooSmallScreen)


async def test_frames_fold_scripted_events_into_the_model() -> None:
    app, clock, _ = make_app(0.0)
    async with app.run_test(size=SIZE):
        app._frame()
        assert app.model.results == type(app.model.results)()
        clock.set(ALARM_AT)
        app._frame()
        assert [r.workload for r in app.model.results] == ["cpu", "io"]
        assert app.model.open_incident is not None
        alarm = app.query_one(BlockingAlarm)
        assert alarm.frozen
        assert alarm.has_class("-frozen")


async def test_fps_must_be_positive() -> None:
    app, _, controller = make_app(MAIN_AT)
    with pytest.raises(ValueError, match="fps must be positive"):
        CpvizApp(app.source, controller, fps=0)


async def test_alarm_names_the_culprit_and_flashes_with_the_display_clock() -> None:
    app, clock, _ = make_app(ALARM_AT)
    async with app.run_test(size=SIZE):
        app._frame()
        alarm = app.query_one(BlockingAlarm)
        first = alarm.render()
        assert isinstance(first, Text)
        status = first.plain.splitlines()[0]
        assert "LOOP FROZEN 0.70 s" in status
        assert "time.sleep at cpviz/workloads/blocking.py:57 in waiter()" in status
        assert "time.sleep(block_s)" in status
        clock.advance(0.25)  # one flash phase later
        app._frame()
        second = alarm.render()
        assert isinstance(second, Text)
        assert flash_phase(ALARM_AT) != flash_phase(ALARM_AT + 0.25)
        assert first.spans[0].style != second.spans[0].style
        clock.set(13.5)  # the loop turned again
        app._frame()
        calm = alarm.render()
        assert isinstance(calm, Text)
        assert calm.plain.startswith("● loop")
        assert not alarm.has_class("-frozen")
        assert "#2" in calm.plain and "1.50 s" in calm.plain


async def test_views_keep_up_while_help_covers_them() -> None:
    app, clock, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        clock.set(ALARM_AT)
        app._frame()
        assert app.alarm.now == ALARM_AT
        assert app.alarm.frozen


async def test_timeline_rows_scroll_with_the_arrow_keys_when_focused() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        timeline = app.query_one(Timeline)
        timeline.focus()
        first_row = len(timeline.header)
        before = timeline.render_line(first_row).text
        assert before.startswith("io:concurrent")  # the going run's rows come first
        await pilot.press("down", "down")
        assert timeline.scroll_y == 2
        assert timeline.render_line(first_row).text.startswith("fetch-01")
        await pilot.press("end")
        assert timeline.render_line(timeline.size.height - 1).text.startswith("chunk-3")


# -- laziness: a frame repaints only what visibly changed ----------------------------------------

#: After the scripted scene: every run ended, every task exited and scrolled out of the timeline,
#: no incident in the window; only the lanes still hold samples (the last at END = 20 s).
QUIET_AT = 25.0


def record_paints(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the widgets Textual renders from now on (to repaint any part of one)."""
    painted: list[str] = []
    original = Widget.render_lines

    def render_lines(self: Widget, crop: Region) -> list[Strip]:
        painted.append(type(self).__name__)
        return original(self, crop)

    monkeypatch.setattr(Widget, "render_lines", render_lines)
    return painted


def record_lines(monkeypatch: pytest.MonkeyPatch, view: type[Widget]) -> list[int]:
    """Content lines of ``view`` drawn from now on."""
    drawn: list[int] = []
    original = view.render_line

    def render_line(self: Widget, y: int) -> Strip:
        drawn.append(y)
        return original(self, y)

    monkeypatch.setattr(view, "render_line", render_line)
    return drawn


async def test_frames_that_change_nothing_visible_repaint_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, clock, _ = make_app(QUIET_AT)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        # Let start-up settle first (the footer lays out its keys once, shortly after mount; on
        # a busy machine that can land inside the frames below).
        await pilot.pause(0.3)
        app._frame()
        await pilot.pause()
        painted = record_paints(monkeypatch)
        # The display clock moves on frame by frame (0.4 s: inside one period of the lanes'
        # figures, one alarm hold period), and the Model takes new data that shows only later:
        # a sample is drawn once the display time reaches it, as a task step is.
        version = app.model.version
        app.model.apply([
            LoopLag(QUIET_AT + 0.1, 0.0004),
            CoreSample(QUIET_AT + 0.5, (40.0, 60.0), (), ctx_switches=100),
        ])
        assert app.model.version > version
        for _ in range(10):
            clock.advance(0.04)
            app._frame()
            await pilot.pause()
        assert painted == []


async def test_a_new_timeline_column_repaints_only_the_lines_that_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, clock, _ = make_app(MAIN_AT, start=("io", "concurrent"))
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        timeline = app.query_one(Timeline)
        height = timeline.scrollable_content_region.height
        drawn = record_lines(monkeypatch, Timeline)
        column_s = timeline.window_s / (timeline.scrollable_content_region.width - LABEL_W)
        clock.advance(column_s)
        app._frame()
        await pilot.pause()
        assert drawn, "the window moved one column: rows with something in it must follow"
        assert 0 not in drawn, "the time axis is relative to now and never moves"
        assert len(set(drawn)) < height


async def test_the_lanes_show_a_sample_once_the_display_time_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, clock, _ = make_app(QUIET_AT)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        drawn = record_lines(monkeypatch, CoreLanes)
        app.model.apply([CoreSample(QUIET_AT + 0.1, (40.0, 60.0), (), ctx_switches=100)])
        clock.set(QUIET_AT + FIGURES_EVERY_S)
        app._frame()
        await pilot.pause()
        assert drawn, "a sample in the window shows on the lanes' next frame"


async def test_an_open_incident_flashes_at_every_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    app, clock, _ = make_app(ALARM_AT)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        painted = record_paints(monkeypatch)
        for _ in range(3):
            phase = flash_phase(clock.now())
            clock.advance(0.25)
            assert flash_phase(clock.now()) != phase
            del painted[:]
            app._frame()
            await pilot.pause()
            assert "BlockingAlarm" in painted


async def test_a_screen_kept_up_lazily_matches_one_drawn_afresh() -> None:
    """Frame after frame at 25 fps through the scene, then the same instant drawn from scratch."""
    since, at = 7.0, 12.0  # from before the blocking run to inside its second freeze
    lazy, clock, _ = make_app(since, start=("blocking", "sync-sleep"))
    fresh, _, _ = make_app(at, start=("blocking", "sync-sleep"))
    async with lazy.run_test(size=SIZE) as pilot:
        for frame in range(1, round((at - since) * 25) + 1):
            clock.set(round(since + frame * 0.04, 6))
            lazy._frame()
            if frame % 3 == 0:  # let Textual draw now and then (drawing every frame is slow)
                await pilot.pause()
        await pilot.pause()
        kept = lazy.screen._compositor.render_strips()
    async with fresh.run_test(size=SIZE) as pilot:
        fresh._frame()
        await pilot.pause()
        drawn = fresh.screen._compositor.render_strips()
    assert [s.text for s in kept] == [s.text for s in drawn]
    assert kept == drawn


async def test_i_shows_and_hides_cpvizs_own_tasks_and_threads() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=SIZE) as pilot:
        app.model.apply([TaskSpawn(MAIN_AT - 1.0, 99_999, "cpviz.engine.lab.dispatch", 0, 0),
                         TaskStep(99_999, MAIN_AT - 0.9, MAIN_AT - 0.9, MAIN_AT - 0.8)])
        app._frame()
        await pilot.pause()
        timeline = app.query_one(Timeline)

        def names() -> set[str]:
            return {info.name for info in timeline._rows}

        assert "cpviz.engine.lab.dispatch" not in names() and names()
        await pilot.press("i")
        app._frame()
        assert "cpviz.engine.lab.dispatch" in names()
        assert app.query_one(OsRows).show_own
        await pilot.press("i")
        app._frame()
        assert "cpviz.engine.lab.dispatch" not in names()
        assert not app.query_one(OsRows).show_own
