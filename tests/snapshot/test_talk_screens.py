"""Talk-mode screens, drawn from a deck and a recording with a manual clock (no live lab)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from cpviz.engine.clock import ManualClock
from cpviz.engine.recording import load
from cpviz.engine.recording.index import scan
from cpviz.engine.replay import ReplayController, ReplaySource
from cpviz.engine.source import ScriptedController, ScriptedSource
from cpviz.screenshot import moment
from cpviz.talk.app import TalkApp
from cpviz.talk.deck import builtin_deck, parse_deck
from cpviz.workloads.registry import catalogue
from tests.paths import FIXTURES

FIXTURE = FIXTURES / "blocking.jsonl.gz"
DECK = parse_deck(
    'title = "Waiting is not working"\n'
    '[[scene]]\ntitle = "One blocking call"\n'
    'caption = "time.sleep inside a coroutine stops every task on the loop."\n'
    'notes = "Point at the alarm: it names the line."\n'
    'workload = "blocking"\nmode = "sync-sleep"\nwindow_s = 1.0\n',
    "snapshot deck",
)


def title_app() -> TalkApp:
    controller = ScriptedController(tuple(w.info() for w in catalogue()))
    return TalkApp(builtin_deck(), ScriptedSource([], ManualClock(0.0), 2), controller)


def recorded_app() -> TalkApp:
    """The deck's one scene, fed by a recording paused inside its first freeze."""
    recording = load(FIXTURE)
    at = moment(scan(FIXTURE), "incident")

    def scene_source(index: int) -> tuple[ReplaySource, ReplayController]:
        source = ReplaySource.from_recording(recording, wall=ManualClock(0.0))
        source.seek(at)
        return source, ReplayController(source, recording.header.workloads, recording.path)

    first = ReplaySource([], recording.header.cores)
    return TalkApp(DECK, first, ReplayController(first, recording.header.workloads, ""),
                   scene_source=scene_source)


async def _settle(pilot: Pilot[None]) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    assert isinstance(app, TalkApp)
    for _ in range(2):  # the second frame draws on the layout the first one settled
        app._frame()
        await pilot.pause()


def test_title_scene(snap_compare) -> None:
    assert snap_compare(title_app(), terminal_size=(120, 40), run_before=_settle)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["narrow-80x24", "wide-160x48"])
def test_live_scene_from_a_recording(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(), terminal_size=size, run_before=_settle)


def test_live_scene_with_notes_shown(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["n"], terminal_size=(120, 40),
                        run_before=_settle)
