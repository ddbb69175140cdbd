"""What to show instead of a garbled layout when the terminal is too small."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static


class TooSmallScreen(Screen[None]):
    """Says how big the terminal must be; the app pops it once the terminal is big enough."""

    DEFAULT_CSS = """
    TooSmallScreen {
        align: center middle;
        & > Static { width: 100%; text-align: center; color: $warning; text-style: bold; }
    }
    """

    size_now: reactive[tuple[int, int]] = reactive((0, 0))
    """The terminal's current (width, height)."""

    def __init__(self, min_size: tuple[int, int], size_now: tuple[int, int]) -> None:
        super().__init__()
        self.min_size = min_size
        self.set_reactive(TooSmallScreen.size_now, size_now)

    def compose(self) -> ComposeResult:
        yield Static(self._message())

    def watch_size_now(self) -> None:
        if self.is_mounted:
            self.query_one(Static).update(self._message())

    def _message(self) -> str:
        (mw, mh), (w, h) = self.min_size, self.size_now
        return f"cpviz needs at least {mw}×{mh}\nthis terminal is {w}×{h}\nresize to continue"
