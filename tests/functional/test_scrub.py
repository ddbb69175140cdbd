"""Scrubbing the live session while paused, and driving a replay, from the keyboard."""

from __future__ import annotations

import pytest

from cpviz.app import CpvizApp
from cpviz.screenshot import replay_app
from cpviz.widgets import BlockingAlarm
from cpviz.widgets._format import fmt_seconds
from cpviz.widgets.seek_screen import SeekScreen, parse_position
from tests.paths import FIXTURES
from tests.scripted import FREEZES, make_app

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
AFTER_FREEZES = 16.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def frozen(alarm: BlockingAlarm) -> bool:
    """A call, so mypy does not carry a narrowing across a key press."""
    return alarm.frozen


def seeking(app: CpvizApp) -> bool:
    return isinstance(app.screen, SeekScreen)


async def test_paused_arrows_step_back_and_resuming_returns_to_now() -> None:
    app, clock, _ = make_app(AFTER_FREEZES)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.press("left")  # not paused: the view stays at now
        assert app.now == AFTER_FREEZES
        await pilot.press("space", "left", "left")
        assert app.now == pytest.approx(AFTER_FREEZES - 2 * app.window_s / 10)
        assert "back" in str(app.sub_title)
        await pilot.press("right")
        assert app.now == pytest.approx(AFTER_FREEZES - app.window_s / 10)
        clock.advance(1.0)
        app._frame()
        assert app.now == pytest.approx(AFTER_FREEZES - app.window_s / 10)  # still paused
        await pilot.press("space")
        app._frame()
        assert app.now == AFTER_FREEZES + 1.0


async def test_n_jumps_to_each_incident_and_the_alarm_shows_it_as_it_was() -> None:
    app, _, _ = make_app(AFTER_FREEZES)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.pause()
        alarm = app.query_one(BlockingAlarm)
        assert not frozen(alarm)  # both freezes are over at the live moment
        await pilot.press("space", "N", "N")  # back to the first, then the second
        first = app.model.incidents[0]
        assert app.now == first.detected
        app._push()
        assert frozen(alarm) and alarm._open is first
        await pilot.press("n")
        assert app.now == app.model.incidents[1].detected
        await pilot.press("n")  # none after the last: it stays put
        assert app.now == app.model.incidents[1].detected
        assert len(FREEZES) == 2


async def test_replay_keys_pause_seek_speed_and_jump() -> None:
    app = replay_app(FIXTURES / "blocking.jsonl.gz", 0.0)
    replay = app.replay
    assert replay is not None and replay.paused
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert replay.speed == 4.0
        await pilot.press("less_than_sign")
        assert replay.speed == 2.0
        await pilot.press("n")
        assert app.model.incidents, "jumping to the first incident folded it"
        position = replay.position
        await pilot.press("left")
        assert replay.position < position
        await pilot.press("g")
        assert seeking(app)
        await pilot.press("9", "9", "enter")  # outside the recording: the prompt stays
        assert seeking(app)
        await pilot.press("backspace", "backspace", "1", "enter")
        assert not seeking(app)
        assert replay.position == pytest.approx(1.0)
        await pilot.press("1")  # starting workloads means nothing in a replay
        assert "REPLAY" in str(app.sub_title)


def test_seek_positions_parse_or_say_what_is_accepted() -> None:
    assert parse_position("12.5", 60) == 12.5
    assert parse_position("1:05", 70) == 65
    assert parse_position(" 3s ", 10) == 3
    with pytest.raises(ValueError, match="not a time"):
        parse_position("soon", 10)
    with pytest.raises(ValueError, match=r"outside the recording: 0 to 10\.0 s"):
        parse_position("11", 10)


async def test_paused_back_label_counts_from_the_moment_paused_and_shrinks_going_forward() -> None:
    """The live present runs on while paused; the label counts from where the view stopped."""
    app, clock, _ = make_app(AFTER_FREEZES)
    async with app.run_test(size=SIZE) as pilot:
        app._frame()
        step = app.window_s / 10
        await pilot.press("space", "left", "left", "left")
        assert f"{fmt_seconds(3 * step)} back" in str(app.sub_title)
        clock.advance(5.0)  # the live session moves on underneath
        app._frame()
        await pilot.press("right")
        assert f"{fmt_seconds(2 * step)} back" in str(app.sub_title)
        await pilot.press("right", "right")
        assert "back" not in str(app.sub_title) and "PAUSED" in str(app.sub_title)


async def test_arrows_and_page_keys_scroll_the_timeline_without_focusing_it() -> None:
    app = replay_app(FIXTURES / "io.jsonl.gz", "mid")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            app._frame()
            await pilot.pause()
        timeline = app.timeline
        assert timeline.max_scroll_y > 0 and not timeline.has_focus
        await pilot.press("down", "down")
        assert timeline.scroll_offset.y == 2
        await pilot.press("pagedown")
        assert timeline.scroll_offset.y > 2
        await pilot.press("up")
        paged = timeline.scroll_offset.y
        await pilot.press("pageup")
        assert 0 <= timeline.scroll_offset.y < paged
        assert not timeline.has_focus
        at = timeline.scroll_offset.y
        await pilot.press("question_mark", "down", "pagedown")  # help is on top: its keys
        assert timeline.scroll_offset.y == at
