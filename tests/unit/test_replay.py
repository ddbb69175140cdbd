"""Replay: the same Model at the same moment as live, and a clock that pauses, speeds and seeks."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from cpviz.cli import main
from cpviz.engine.clock import ManualClock
from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.events import (
    Event,
    IncidentEnd,
    IncidentStart,
    RunEnd,
    RunResult,
    RunStart,
    StallEnd,
    StallStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.model import Model
from cpviz.engine.recording import Recording, load
from cpviz.engine.replay import SPEEDS, ReplayController, ReplayError, ReplaySource
from cpviz.engine.source import event_time
from tests.paths import FIXTURES

RECORDINGS = ["io.jsonl.gz", "blocking.jsonl.gz", "cpu.jsonl.gz"]


def result(key: str) -> RunResult:
    return RunResult(key, "m", (), 3.0, 0.1, 0.03, None, None, ())


def scene() -> list[Event]:
    """Run 1 of io from 1.0 to 4.0 s with a freeze at 2.0 and a stall at 3.0; cpu from 5.0."""
    return [
        RunStart(1.0, 1, "io", "concurrent", ()),
        TaskSpawn(1.1, 10, "call 1", 1, 0),
        TaskStep(10, 1.1, 1.2, 1.3),
        IncidentStart(2.0, 1, 1.9, None, "time.sleep"),
        IncidentEnd(2.5, 1, 0.6),
        StallStart(3.0, 1, 1, 2.8, ()),
        StallEnd(3.5, 1, 1),
        RunEnd(4.0, 1, result("io")),
        RunStart(5.0, 2, "cpu", "loop", ()),
        TaskStep(10, 5.5, 5.6, 6.0, True),
    ]


def source(events: list[Event] | None = None) -> tuple[ReplaySource, ManualClock]:
    wall = ManualClock()
    return ReplaySource(scene() if events is None else events, 2, start=0.0, wall=wall), wall


def reset_pending(src: ReplaySource) -> bool:
    """A call, so mypy does not carry a narrowing of the property past take_reset()."""
    return src.needs_reset


# -- the replay clock -----------------------------------------------------------------------------


def test_events_come_out_as_the_replay_clock_passes_them_at_one_x() -> None:
    src, wall = source()
    assert src.position == 0.0 and src.duration == 6.0 and src.speed == 1.0
    assert src.poll() == []
    wall.advance(1.25)
    assert [type(ev) for ev in src.poll()] == [RunStart, TaskSpawn]
    assert src.clock.now() == 1.25
    wall.advance(0.05)
    assert [type(ev) for ev in src.poll()] == [TaskStep]  # a step counts when it ends
    assert src.poll() == []


def test_speed_scales_how_fast_the_position_moves() -> None:
    src, wall = source()
    src.speed = 4.0
    wall.advance(0.5)
    assert src.position == 2.0
    src.speed = 0.25
    wall.advance(2.0)
    assert src.position == 2.5
    with pytest.raises(ReplayError, match=r"speed must be one of 0\.25, 0\.5, 1, 2, 4, 8"):
        src.speed = 3.0
    assert src.position == 2.5 and src.speed == 0.25


def test_faster_and_slower_step_through_the_speeds_and_stop_at_the_ends() -> None:
    src, _ = source()
    assert [src.faster() for _ in range(6)] == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert [src.slower() for _ in range(7)] == [4.0, 2.0, 1.0, 0.5, 0.25, 0.25, 0.25]
    assert SPEEDS == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def test_pause_holds_the_position_and_play_goes_on_from_it() -> None:
    src, wall = source()
    wall.advance(1.0)
    src.pause()
    assert src.paused
    wall.advance(10.0)
    assert src.position == 1.0
    assert [type(ev) for ev in src.poll()] == [RunStart]
    assert src.toggle() is False
    wall.advance(0.5)
    assert src.position == 1.5


def test_the_position_stops_at_the_last_event() -> None:
    src, wall = source()
    wall.advance(100.0)
    assert src.position == src.duration and src.finished
    assert len(src.poll()) == len(scene())


def test_seeking_forward_hands_over_everything_passed() -> None:
    src, _ = source()
    src.seek(3.2)
    assert not src.needs_reset
    got = src.poll()
    assert [type(ev) for ev in got] == [
        RunStart, TaskSpawn, TaskStep, IncidentStart, IncidentEnd, StallStart,
    ]


def test_seeking_back_asks_for_a_new_model_then_replays_up_to_the_position() -> None:
    src, _ = source()
    src.seek(4.5)
    first = src.poll()
    src.seek(1.15)
    assert reset_pending(src)
    assert src.poll() == []  # nothing until the app has taken the reset
    assert src.take_reset() is True and not reset_pending(src)
    again = src.poll()
    assert again == first[:2]
    assert src.take_reset() is False


def test_seek_clamps_to_the_recording() -> None:
    src, _ = source()
    src.seek(-5)
    assert src.position == 0.0
    src.seek(99)
    assert src.position == src.duration


def test_next_incident_jumps_to_each_freeze_and_stall_where_it_was_detected() -> None:
    src, _ = source()
    assert src.next_incident() == 2.0
    assert any(isinstance(ev, IncidentStart) for ev in src.poll())
    assert src.next_incident() == 3.0
    assert any(isinstance(ev, StallStart) for ev in src.poll())
    assert src.next_incident() is None
    assert src.position == 3.0
    src.seek(0.5)
    assert src.needs_reset
    assert src.next_incident() == 2.0


def test_an_empty_recording_replays_as_nothing() -> None:
    src, wall = source([])
    wall.advance(1.0)
    assert src.poll() == [] and src.duration == 0.0 and src.next_incident() is None


# -- the controller -------------------------------------------------------------------------------


def test_the_controller_offers_the_recorded_workloads_and_starts_nothing() -> None:
    src, wall = source()
    infos = (WorkloadInfo("io", "I/O", ("concurrent",), (), "x"),)
    controller = ReplayController(src, infos, "run.jsonl.gz")
    assert controller.workloads() == infos
    assert controller.running() == set()
    wall.advance(2.0)
    assert controller.running() == {"io"}
    with pytest.raises(ReplayError, match=r"replay of run\.jsonl\.gz: io cannot be started"):
        controller.start("io", "concurrent", {})
    controller.stop("io")
    assert controller.notice is not None and "plays on" in controller.notice
    assert controller.running() == {"io"}
    wall.advance(3.5)
    assert controller.running() == {"cpu"}  # a run the recording stopped before goes on
    with pytest.raises(ValueError, match="cannot be pinned"):
        controller.pin(1)
    controller.close()


# -- the same screen as live ----------------------------------------------------------------------


def snapshot(model: Model) -> dict[str, Any]:
    """Everything the views draw from."""
    return {
        "tasks": list(model.tasks.values()),
        "incidents": model.incidents,
        "runs": model.runs,
        "results": list(model.results),
        "samples": list(model.samples),
        "lag": (model.lag_s, model.lag_at),
        "dropped": model.dropped,
        "metrics": model.metrics,
        "sweeps": model.sweeps,
        "phases": model.phases,
        "stalls": model.stalls,
    }


def live_up_to(recording: Recording, t: float) -> Model:
    """What the live Model held at ``t``: it folds the stream in order, so a prefix of the
    recording, the longest whose events had all happened by ``t``."""
    model = Model(recording.header.cores)
    prefix = itertools.takewhile(lambda ev: event_time(ev) <= t, recording.events)
    model.apply(prefix)
    return model


@pytest.mark.parametrize("name", RECORDINGS)
def test_replay_folds_to_the_same_model_as_live_at_every_moment(name: str) -> None:
    recording = load(FIXTURES / name)
    wall = ManualClock()
    src = ReplaySource.from_recording(recording, wall=wall)
    model = Model(src.cores)
    checked = 0
    # Frame by frame, as the app polls at 25 fps, here at half speed: every frame is the live
    # screen at that moment.
    src.speed = 0.5
    while not src.finished:
        wall.advance(0.04)
        model.apply(src.poll())
        assert snapshot(model) == snapshot(live_up_to(recording, src.clock.now()))
        checked += 1
    model.apply(src.poll())
    assert snapshot(model) == snapshot(live_up_to(recording, src.end))
    assert checked >= 10
    assert model.results, "the run's result shows as it did live"


def test_after_seeking_back_a_new_model_matches_live() -> None:
    recording = load(FIXTURES / "blocking.jsonl.gz")
    src = ReplaySource.from_recording(recording, wall=ManualClock(), paused=True)
    model = Model(src.cores)
    src.seek(src.duration)
    model.apply(src.poll())
    src.seek(src.duration / 2)
    assert src.take_reset()
    model = Model(src.cores)
    model.apply(src.poll())
    assert snapshot(model) == snapshot(live_up_to(recording, src.clock.now()))


def test_incidents_replay_with_their_culprit() -> None:
    recording = load(FIXTURES / "blocking.jsonl.gz")
    src = ReplaySource.from_recording(recording, wall=ManualClock(), paused=True)
    model = Model(src.cores)
    assert src.next_incident() is not None
    model.apply(src.poll())
    incident = model.open_incident
    assert incident is not None and incident.culprit is not None
    assert incident.culprit.file.endswith("blocking.py")
    assert incident.blocking_call is not None and "sleep" in incident.blocking_call


# -- the command line -----------------------------------------------------------------------------


def test_replay_check_prints_what_the_recording_holds(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "blocking.jsonl.gz"
    assert main(["replay", str(path), "--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: ")
    assert "1 run," in out and "blocking:sync-sleep completed" in out
    assert main(["replay", str(path), "--check", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    recording = load(path)
    assert info["events"] == len(recording.events)
    assert info["incidents"] == sum(isinstance(ev, IncidentStart) for ev in recording.events)
    assert [r["outcome"] for r in info["runs"]] == ["completed"]
    assert [r["wall_s"] for r in info["runs"]] == [
        round(ev.result.wall_s, 6) for ev in recording.events if isinstance(ev, RunEnd)
    ]


def test_replay_without_a_terminal_says_how_to_check_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(FIXTURES / "io.jsonl.gz")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "cpviz: error: replay needs an interactive terminal; to check a file from a script "
        "use 'cpviz replay FILE --check'"
    ]


# -- on the screen --------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_app_plays_a_recording_through_the_same_model() -> None:
    from cpviz.app import CpvizApp

    recording = load(FIXTURES / "blocking.jsonl.gz")
    wall = ManualClock()
    src = ReplaySource.from_recording(recording, wall=wall)
    controller = ReplayController(src, recording.header.workloads, recording.path)
    app = CpvizApp(src, controller)
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.model.results
        src.seek(src.duration)
        await pilot.pause(0.2)
        assert [r.outcome for r in app.model.results] == ["completed"]
        assert app.now == src.end
        await pilot.press("3")  # a workload key asks the controller, which starts nothing
        await pilot.pause()
    assert app.model.incidents
