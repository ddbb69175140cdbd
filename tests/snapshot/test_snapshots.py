"""Snapshot tests: scripted events and a stopped manual clock, so every run draws the same screen.

Regenerate the baselines after an intended change with ``pytest tests/snapshot/test_snapshots.py
--snapshot-update`` and look at the report before committing them.
"""

from __future__ import annotations

from textual.pilot import Pilot

from tests.scripted import ALARM_AT, MAIN_AT, make_app


async def _frame(pilot: Pilot[None]) -> None:
    """Fold the scripted events up to the clock before the shot; nothing else moves."""
    app = pilot.app
    app._frame()  # type: ignore[attr-defined]
    await pilot.pause()


def test_main_screen_with_a_workload_running(snap_compare) -> None:
    app, _, _ = make_app(MAIN_AT, start=("io", "concurrent"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=_frame)


def test_alarm_lit_inside_an_open_incident(snap_compare) -> None:
    app, _, _ = make_app(ALARM_AT, start=("blocking", "sync-sleep"))
    assert app.model is not None
    assert snap_compare(app, terminal_size=(120, 40), run_before=_frame)


def test_help_screen(snap_compare) -> None:
    app, _, _ = make_app(MAIN_AT)
    assert snap_compare(app, press=["question_mark"], terminal_size=(120, 40), run_before=_frame)


def test_too_small_screen(snap_compare) -> None:
    app, _, _ = make_app(MAIN_AT)
    assert snap_compare(app, terminal_size=(60, 15), run_before=_frame)


def test_main_screen_at_the_minimum_size(snap_compare) -> None:
    app, _, _ = make_app(ALARM_AT, start=("blocking", "sync-sleep"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_frame)
