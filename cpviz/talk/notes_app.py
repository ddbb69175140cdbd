"""The speaker's second terminal: the current scene, its notes and what comes next.

It only follows: it never steers the talk. States come from a ``NotesClient`` (or any iterable of
state dicts, which keeps it testable without a socket) read on a thread of its own; the thread
hands each one to the app with ``post_message``, which never waits on the UI, so quitting while
the thread is mid-read cannot deadlock. When the states run out the talk has ended, and the app
exits with a one-line message. Nothing moves on screen except when a new state arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from cpviz.app import CrashLine
from cpviz.talk.theme import next_theme, register_talk_themes

ENDED_MESSAGE = "cpviz notes: the talk has ended."


class NotesApp(CrashLine):
    """Follows a running talk and shows the speaker where they are."""

    TITLE = "cpviz notes"
    CSS = """
    Screen { background: $background; }
    #top, #bottom { dock: top; height: 1; background: $panel; }
    #bottom { dock: bottom; }
    #deck, #next { width: 1fr; padding: 0 1; text-style: bold; }
    #position, #keys { width: auto; padding: 0 1; }
    #position { color: $accent; text-style: bold; }
    #keys { color: $text-muted; }
    #title { padding: 1 2 0 2; color: $primary; text-style: bold; }
    #caption { padding: 0 2; color: $secondary; text-style: italic; }
    #notes-box { height: 1fr; margin-top: 1; border-top: solid $primary; }
    #notes { padding: 0 4 1 4; color: $foreground; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("t", "next_theme", "theme"),
    ]

    class StateArrived(Message):
        def __init__(self, state: dict[str, Any]) -> None:
            super().__init__()
            self.state = state

    class TalkEnded(Message):
        def __init__(self, message: str, failed: bool) -> None:
            super().__init__()
            self.message = message
            self.failed = failed

    def __init__(self, source: Iterable[Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self._source = source
        self._reader: threading.Thread | None = None
        self._themes: list[str] = []
        #: The state on screen, None until the first arrives.
        self.state: dict[str, Any] | None = None
        #: How the talk ended (the line printed on exit), None while it goes on.
        self.ended: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static(id="deck")
            yield Static(id="position")
        yield Static(id="title")
        yield Static(id="caption")
        with VerticalScroll(id="notes-box"):
            yield Static(id="notes")
        with Horizontal(id="bottom"):
            yield Static(id="next")
            yield Static("q quit  t theme", id="keys")

    def on_mount(self) -> None:
        self._themes = register_talk_themes(self)
        self.theme = self._themes[0]
        self._draw()
        if self._source is not None:
            self._reader = threading.Thread(
                target=self._follow, args=(self._source,), name="cpviz-notes-view", daemon=True
            )
            self._reader.start()

    def on_unmount(self) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):  # a NotesClient: wakes the reader blocked on the socket
            close()
        if self._reader is not None:
            self._reader.join()
            self._reader = None

    def _follow(self, source: Iterable[Mapping[str, Any]]) -> None:
        """Reader thread: hand each state to the app, then say how the talk ended."""
        ended = self.TalkEnded(ENDED_MESSAGE, failed=False)
        try:
            for state in source:
                if not self._post(self.StateArrived(dict(state))):
                    return
        except Exception as exc:  # shown to the speaker; the thread must not die silently
            ended = self.TalkEnded(f"cpviz notes: lost the talk: {exc}", failed=True)
        self._post(ended)

    def _post(self, message: Message) -> bool:
        try:
            return self.post_message(message)
        except RuntimeError:  # the app's loop is already gone
            return False

    def on_notes_app_state_arrived(self, message: StateArrived) -> None:
        self.show(message.state)

    def on_notes_app_talk_ended(self, message: TalkEnded) -> None:
        self.ended = message.message
        self.exit(return_code=1 if message.failed else 0, message=message.message)

    def action_next_theme(self) -> None:
        self.theme = next_theme(self._themes, self.theme)

    def show(self, state: Mapping[str, Any]) -> None:
        """Show one state (the talk's whole current scene)."""
        self.state = dict(state)
        if self._themes:  # mounted: the widgets exist
            self._draw()

    def _draw(self) -> None:
        state = self.state
        if state is None:
            self._set("deck", Text("cpviz notes"))
            self._set("position", Text(""))
            self._set("title", Text("waiting for the talk…"))
            self._set("caption", Text(""))
            self._set("notes", Text(""))
            self._set("next", Text(""))
            return
        index, count = int(state.get("index", 0)), int(state.get("count", 0))
        position = [f"scene {index + 1} of {count}"]
        dilation = float(state.get("dilation", 1.0))
        if dilation != 1.0:
            position.append(f"slow motion ×{dilation:g}")
        if state.get("blank"):
            position.append("SCREEN BLANKED")
        self._set("deck", Text(str(state.get("deck", ""))))
        self._set("position", Text("  ·  ".join(position)))
        self._set("title", Text(str(state.get("title", ""))))
        self._set("caption", Text(str(state.get("caption", ""))))
        notes = str(state.get("notes", "")).strip()
        self._set("notes", Text(notes) if notes else Text("(no notes for this scene)", "dim"))
        following = state.get("next")
        self._set("next", Text(f"next: {following}" if following else "next: (last scene)"))

    def _set(self, widget_id: str, content: Text) -> None:
        self.query_one(f"#{widget_id}", Static).update(content)
