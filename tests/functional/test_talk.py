"""Talk mode on a scripted controller: every scene starts clean, and nothing is left running."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpviz.engine.clock import ManualClock
from cpviz.engine.source import ScriptedController, ScriptedSource
from cpviz.talk.app import BlankScreen, TalkApp, speed_label
from cpviz.talk.deck import Deck, builtin_deck, parse_deck
from cpviz.talk.notes import NotesState
from cpviz.workloads.registry import catalogue

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make(deck: Deck, notes: list[NotesState] | None = None) -> tuple[TalkApp,
                                                                  ScriptedController]:
    controller = ScriptedController(tuple(w.info() for w in catalogue()))
    source = ScriptedSource([], ManualClock(10.0), 2)

    class Channel:
        def publish(self, state: NotesState) -> None:
            if notes is not None:
                notes.append(state)

    return TalkApp(deck, source, controller, notes=Channel()), controller


async def settle(app: TalkApp) -> None:
    await app.workers.wait_for_complete()


async def test_the_builtin_deck_steps_through_every_scene_cleanly() -> None:
    deck = builtin_deck()
    notes: list[NotesState] = []
    app, controller = make(deck, notes)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        for index, scene in enumerate(deck.scenes):
            assert app.index == index
            # Whatever the last scene started is stopped before this one starts anything.
            running = controller.running()
            assert running == ({scene.workload} if scene.workload else set())
            assert notes[-1]["index"] == index and notes[-1]["title"] == scene.title
            if index + 1 < len(deck.scenes):
                await pilot.press("right")
                await settle(app)
        starts = [c for c in controller.calls if c[0] == "start"]
        assert [c[1] for c in starts] == [s.workload for s in deck.scenes if s.workload]
        for call, scene in zip(starts, [s for s in deck.scenes if s.workload], strict=True):
            assert call[2] == scene.mode
            assert all(call[3][k] == v for k, v in scene.params.items())
        await pilot.press("right")  # past the last scene: it stays
        await settle(app)
        assert app.index == len(deck.scenes) - 1
        await pilot.press("left")
        await settle(app)
        assert app.index == len(deck.scenes) - 2
    assert controller.calls[-1][0] == "close"


async def test_restart_blank_notes_and_slow_motion() -> None:
    deck = parse_deck(
        'title = "T"\n'
        '[[scene]]\ntitle = "Waits"\ncaption = "All at once."\nnotes = "Point at the band."\n'
        'workload = "io"\nmode = "concurrent"\ndilation = 4.0\nwindow_s = 1.0\n',
        "t.toml",
    )
    app, controller = make(deck)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert "¼× slow motion" in str(app.sub_title)
        assert app.window_s == 1.0
        # Display time runs four times slower than the source from the scene's start.
        assert app.display_time(app.anchor + 2.0) == pytest.approx(app.anchor + 0.5)
        await pilot.press("r")
        await settle(app)
        ops = [(c[0], c[1]) for c in controller.calls]
        assert ops == [("start", "io"), ("stop", "io"), ("start", "io")]
        await pilot.press("n")
        assert app.notes_shown
        await pilot.press("b")
        assert isinstance(app.screen, BlankScreen)
        await pilot.press("b")
        assert not isinstance(app.screen, BlankScreen)


def test_the_speed_is_always_said() -> None:
    assert speed_label(4.0) == "¼× slow motion"
    assert speed_label(2.0) == "½× slow motion"
    assert speed_label(6.0) == "1/6× slow motion"


def test_talk_check_reports_a_deck_and_rejects_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cpviz.cli import main

    assert main(["talk", "--check"]) == 0
    assert "scenes" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "T"\n[[scene]]\ntitle = "x"\nworkload = "cpu"\nmode = "lop"\n')
    assert main(["talk", str(bad), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'scene 1 ("x")' in err and '"mode"' in err


def test_replay_dir_needs_every_scene_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cpviz.cli import main

    assert main(["talk", "--replay-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks the recordings of" in err and "scene-02.jsonl.gz" in err


async def test_on_a_real_lab_each_scene_starts_only_after_the_last_one_stopped() -> None:
    from cpviz.engine.observed import ObservedController, ObservedLab
    from cpviz.engine.source import LiveSource

    deck = parse_deck(
        'title = "T"\n'
        '[[scene]]\ntitle = "Blocking"\nworkload = "blocking"\nmode = "sync-sleep"\n'
        'params = { duration_s = 600, block_ms = 50, period_ms = 200 }\n'
        '[[scene]]\ntitle = "Pipeline"\nworkload = "pipeline"\n'
        'params = { messages = 100000, rate = 50 }\n'
        '[[scene]]\ntitle = "The end"\n',
        "t.toml",
    )
    lab = ObservedLab(catalogue(), sample=False).start()
    try:
        app = TalkApp(deck, LiveSource(lab.stream, lab.cores), ObservedController(lab))
        async with app.run_test(size=SIZE) as pilot:
            await settle(app)
            assert lab.running() == {"blocking"}
            await pilot.press("right")
            await settle(app)
            assert lab.running() == {"pipeline"}  # blocking had stopped before this started
            await pilot.press("right")
            await settle(app)
            assert lab.running() == set()
            assert app.history == [(0, "blocking"), (1, "pipeline"), (2, None)]
    finally:
        lab.close()


#: Words in a scene's notes or caption, and the view the audience must see for them to make sense.
VIEW_WORDS = {"runs panel": "runs", "timeline": "timeline", "lane": "cores", "alarm": "alarm",
              "measures": "measures", "tickers": "timeline"}


def test_notes_and_captions_speak_only_of_views_the_scene_shows() -> None:
    for n, scene in enumerate(builtin_deck().scenes, start=1):
        if scene.workload is None:
            continue  # an opening or closing slide: it speaks of the talk, not of a view
        for where, text in (("notes", scene.notes), ("caption", scene.caption)):
            for word, view in VIEW_WORDS.items():
                if word in text.lower():
                    assert view in scene.views, f"scene {n} {where} mention {word!r}"


def test_notes_break_only_between_points_so_they_wrap_at_word_boundaries() -> None:
    from cpviz.talk.deck import reflow

    typed = "Point at the timeline: one\ntask at a time.\nThe lanes idle;\nnothing runs.\n\nNext."
    assert reflow(typed) == ("Point at the timeline: one task at a time.\n"
                             "The lanes idle; nothing runs.\n\nNext.")
    for scene in builtin_deck().scenes:
        for line in scene.notes.splitlines():
            assert not line or line.endswith((".", "!", "?", ":")), line


async def test_the_notes_box_wraps_whole_words() -> None:
    app, _ = make(builtin_deck())
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.press("right", "right", "n")  # the fan-out scene, notes shown
        await settle(app)
        await pilot.pause()
        notes = app._notes
        words = set(" ".join(app.scene.notes.split()).split())
        lines = [notes.render_line(y).text.strip(" │╭╮╰╯─") for y in range(notes.size.height)]
        assert sum(1 for line in lines if line) >= 3
        for line in lines:
            for word in line.split():
                assert word in words, (word, lines)
