"""``g`` in a replay: type the moment to jump to."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def parse_position(text: str, duration: float) -> float:
    """Seconds from the recording's start, from ``12.5``, ``12.5s`` or ``1:05``.

    Raises ValueError with the message to show.
    """
    raw = text.strip().lower().removesuffix("s").strip()
    try:
        if ":" in raw:
            minutes, _, seconds = raw.partition(":")
            value = int(minutes) * 60 + float(seconds)
        else:
            value = float(raw)
    except ValueError:
        raise ValueError(f"not a time: {text!r}; type seconds (12.5) or m:ss (1:05)") from None
    if not 0 <= value <= duration:
        raise ValueError(f"{value:g} s is outside the recording: 0 to {duration:.1f} s")
    return value


class SeekScreen(ModalScreen[float | None]):
    """Modal, so the replay stays visible underneath; dismisses with the position or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    DEFAULT_CSS = """
    SeekScreen {
        align: center middle;
        & > Vertical {
            width: 60;
            height: auto;
            border: round $primary;
            background: $surface;
            padding: 0 1;
        }
        & #seek-error { color: $error; height: auto; }
    }
    """

    def __init__(self, duration: float, position: float) -> None:
        super().__init__()
        self.duration = duration
        self.position = position

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "seek"
            box.border_subtitle = "enter to jump · escape to cancel"
            yield Static(
                f"Jump to which moment? 0 to {self.duration:.1f} s "
                f"(now at {self.position:.1f} s); seconds or m:ss."
            )
            field = Input(placeholder="e.g. 12.5 or 1:05", id="seek-input")
            field.cursor_blink = False  # nothing on a cpviz screen moves unless time does
            yield field
            yield Static("", id="seek-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            position = parse_position(event.value, self.duration)
        except ValueError as exc:
            self.query_one("#seek-error", Static).update(str(exc))
            return
        self.dismiss(position)

    def action_cancel(self) -> None:
        self.dismiss(None)
