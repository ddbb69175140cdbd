"""The talk screen: cpviz's views under a big title and caption, one scene at a time.

A scene change stops everything the last scene started and waits until the controller reports
nothing running, folds what is left of the stream (so a recording of the scene is complete),
then clears the Model, lays the views out as the scene asks and starts its workload. Slow
motion stretches display time only (see :meth:`CpvizApp.display_time`): what is measured and
recorded keeps real time, and the subtitle says the factor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

import cpviz.app as cpviz_app
from cpviz.app import CpvizApp
from cpviz.engine.replay import ReplaySource
from cpviz.engine.source import Controller, Source
from cpviz.talk.deck import Deck, Scene
from cpviz.talk.notes import NotesState, scene_state
from cpviz.talk.theme import next_theme, register_talk_themes
from cpviz.widgets.big_text import BigText

#: Seconds a scene change waits for the last scene's runs to stop before saying so.
STOP_WAIT_S = 10.0


class SceneRecorder(Protocol):
    """Records one scene (``--record-dir``): made when the scene starts, closed when it ends."""

    def close(self) -> Any: ...


class NotesChannel(Protocol):
    def publish(self, state: NotesState) -> None: ...


class BlankScreen(Screen[None]):
    """``b``: nothing on the projector while the speaker talks; ``b`` again brings it back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b,escape", "app.pop_screen", "back", show=False),
    ]
    DEFAULT_CSS = "BlankScreen { background: black; }"

    def compose(self) -> ComposeResult:
        return iter(())


def speed_label(dilation: float) -> str:
    """``4.0`` → ``¼× slow motion``; the factor the screen must always say."""
    fractions = {2.0: "½", 3.0: "⅓", 4.0: "¼", 5.0: "⅕", 8.0: "⅛", 10.0: "⅒"}
    return f"{fractions.get(dilation, f'1/{dilation:g}')}× slow motion"


class TalkApp(CpvizApp, inherit_bindings=False):
    """Steps through a deck; the same Model, views and controller as the live screen."""

    # Absolute: Textual resolves a relative CSS_PATH beside the subclass's own module.
    CSS_PATH = [  # type: ignore[assignment]  # noqa: RUF012
        Path(cpviz_app.__file__).with_name("cpviz.tcss"),
        Path(__file__).with_name("talk.tcss"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,space,pagedown", "step(1)", "next", key_display="→"),
        Binding("left,pageup", "step(-1)", "back", key_display="←"),
        Binding("r", "restart", "restart"),
        Binding("b", "blank", "blank"),
        Binding("n", "toggle_notes", "notes"),
        Binding("t", "next_theme", "theme"),
        Binding("plus,equals_sign", "zoom_in", "zoom", key_display="+/-"),
        Binding("minus", "zoom_out", "zoom out", show=False),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        deck: Deck,
        source: Source,
        controller: Controller,
        *,
        fps: float = 25.0,
        scene_source: Callable[[int], tuple[Source, Controller] | None] | None = None,
        scene_recorder: Callable[[int, Scene], SceneRecorder | None] | None = None,
        notes: NotesChannel | None = None,
        first: int = 0,
    ) -> None:
        super().__init__(source, controller, fps=fps, min_size=(60, 20))
        if not deck.scenes:
            raise ValueError("a deck needs at least one scene")
        self.deck = deck
        self.title = f"cpviz talk — {deck.title}"
        #: Scene on screen (its index into ``deck.scenes``).
        self.index = min(max(0, first), len(deck.scenes) - 1)
        #: The scene last asked for (``index`` catches up once it has started).
        self._wanted = self.index
        self.scene_source = scene_source
        self.scene_recorder = scene_recorder
        self.notes_channel = notes
        self._recorder: SceneRecorder | None = None
        self._themes: list[str] = []
        self.notes_shown = False
        #: Every scene change, as (scene index, workload started or None), for tests and logs.
        self.history: list[tuple[int, str | None]] = []
        self._stage_title = BigText(id="talk-title")
        self._caption = Static(id="talk-caption")
        self._notes = Static(id="talk-notes")

    # -- composition ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◴")
        with Vertical(id="stage"):
            yield self._stage_title
            yield self._caption
        yield from self.compose_views()
        yield self._notes
        yield Footer()

    def on_mount(self) -> None:
        self._themes = register_talk_themes(self)
        if self._themes:
            self.theme = self._themes[0]
        self._notes.display = False
        super().on_mount()
        self._go(self.index)

    # -- scenes ---------------------------------------------------------------------------------

    @property
    def scene(self) -> Scene:
        return self.deck.scenes[self.index]

    def action_step(self, direction: int) -> None:
        # From the scene asked for last, not the one on screen: a quick → → skips ahead even
        # while the first change is still stopping the old scene's runs.
        target = self._wanted + direction
        if not 0 <= target < len(self.deck.scenes):
            self.notify("that was the last scene" if direction > 0 else "this is the first scene")
            return
        self._go(target)

    def action_restart(self) -> None:
        self._go(self._wanted)

    def _go(self, index: int) -> None:
        self._wanted = index
        self.run_worker(self._enter(index), exclusive=True, group="scene")

    async def _enter(self, index: int) -> None:
        """Leave the current scene completely, then set up and start scene ``index``."""
        await self._stop_everything()
        await self._finish_recording()
        self.index = index
        scene = self.scene
        if self.scene_source is not None:
            replaced = self.scene_source(index)
            if replaced is not None:
                self.source, self.controller = replaced
                self.replay = self.source if isinstance(self.source, ReplaySource) else None
                if self.replay is not None:
                    self.replay.play()
        self.model.reset()
        self.paused = False
        self.dilation = scene.dilation
        self.anchor = self.source.clock.now()
        self.now = self.anchor
        self.window_s = scene.window_s
        self._lay_out(scene)
        started: str | None = None
        if scene.workload is not None:
            if self.scene_recorder is not None:
                self._recorder = self.scene_recorder(index, scene)
            started = self._start_scene(scene) if self.replay is None else scene.workload
            self._select(scene.workload)
        self.history.append((index, started))
        self._publish()
        self._update_subtitle()
        self._push()

    async def _stop_everything(self) -> None:
        controller = self.controller
        for key in sorted(controller.running()):
            controller.stop(key)
        deadline = time.monotonic() + STOP_WAIT_S
        # Polling, because the controller has no event to wait on: a lab run ends on its thread.
        while controller.running() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if controller.running():
            self.notify(
                "the last scene's runs did not stop within "
                f"{STOP_WAIT_S:g} s: {', '.join(sorted(controller.running()))}",
                severity="warning",
            )
        # Fold what the stopped runs still had in the stream, so the scene's record is whole.
        self.model.apply(self.source.poll())

    async def _finish_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            await asyncio.to_thread(recorder.close)

    def _start_scene(self, scene: Scene) -> str | None:
        assert scene.workload is not None
        info = next((i for i in self.controller.workloads() if i.key == scene.workload), None)
        if info is None:
            self.notify(f"this lab has no workload {scene.workload!r}", severity="error")
            return None
        mode = scene.mode or (info.modes[0] if info.modes else "")
        params = {p.name: p.default for p in info.params}
        params.update(scene.params)
        try:
            self.controller.start(scene.workload, mode, params)
        except Exception as exc:
            self.notify(f"could not start {scene.workload}: {exc}", severity="error")
            return None
        return scene.workload

    def _select(self, key: str) -> None:
        for i, info in enumerate(self._infos):
            if info.key == key:
                self.selected = i
                if self.scene.mode:
                    self._mode_by_key[key] = self.scene.mode
                return

    def _lay_out(self, scene: Scene) -> None:
        """Show the scene's views, in its proportions; a title-only scene is all stage."""
        views = set(scene.views)
        sizes = scene.sizes
        self.lanes.display = "cores" in views
        self.runs.display = "runs" in views
        top = self.query_one("#top")
        if self.lanes.parent is top:
            top.display = bool(views & {"cores", "runs"})
            top.styles.height = f"{max(sizes.get('cores', 1), sizes.get('runs', 1))}fr"
        else:  # the lanes sit on the timeline's axis, apart from the runs
            top.display = "runs" in views
            top.styles.height = f"{sizes.get('runs', 1)}fr"
            self.lanes.styles.height = f"{sizes.get('cores', 1)}fr"
        self.measures.allowed = "measures" in views
        self.timeline.display = "timeline" in views
        self.timeline.styles.height = f"{sizes.get('timeline', 2)}fr"
        self.alarm.display = "alarm" in views
        if "alarm" in sizes:
            self.alarm.styles.height = f"{sizes['alarm']}fr"
        stage = self.query_one("#stage")
        stage.set_class(not views, "-title-only")
        self._fit_title()
        self._stage_title.text = scene.title
        self._caption.update(scene.caption)
        self._caption.display = bool(scene.caption)
        self._notes.update(scene.notes or "(no notes for this scene)")

    def _fit_title(self) -> None:
        """Big letters take the whole stage in a title scene; with views under them, one line
        of them on a short terminal (else two), and plain bold text when the title needs more."""
        if not self.scene.views:
            self._stage_title.max_rows = None
        else:
            self._stage_title.max_rows = 3 if self.size.height < 32 else 7

    def on_resize(self, event: events.Resize) -> None:
        super().on_resize(event)
        if self._stage_title.is_mounted:
            self._fit_title()

    def _publish(self) -> None:
        if self.notes_channel is not None:
            self.notes_channel.publish(
                scene_state(self.deck, self.index, blank=isinstance(self.screen, BlankScreen))
            )

    # -- presenting -----------------------------------------------------------------------------

    def action_blank(self) -> None:
        if isinstance(self.screen, BlankScreen):
            self.pop_screen()
        else:
            self.push_screen(BlankScreen())
        self._publish()

    def action_toggle_notes(self) -> None:
        self.notes_shown = not self.notes_shown
        self._notes.display = self.notes_shown

    def action_next_theme(self) -> None:
        if not self._themes:
            return
        self.theme = next_theme(self._themes, self.theme)
        self.notify(f"theme: {self.theme}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True

    def _update_subtitle(self) -> None:
        parts = [f"scene {self.index + 1} of {len(self.deck.scenes)}"]
        if self.dilation != 1.0:
            parts.append(speed_label(self.dilation))
        if self.replay is not None:
            parts.append("from a recording")
        text = " · ".join(parts)
        if text != self.sub_title:
            self.sub_title = text

    async def action_quit(self) -> None:
        await self._stop_everything()
        await self._finish_recording()
        await super().action_quit()
