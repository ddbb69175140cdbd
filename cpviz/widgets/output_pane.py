"""The observed program's own output: what it printed, in a pane the user shows with ``o``."""

from __future__ import annotations

from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from cpviz.engine.model import Model


class OutputPane(Widget):
    """The last lines the program wrote, newest at the bottom; redrawn only when one arrives."""

    DEFAULT_CSS = """
    OutputPane {
        height: 8;
        border: round $secondary;
        border-title-color: $secondary;
        display: none;
        &.-shown { display: block; }
    }
    """

    def __init__(self, model: Model, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.border_title = "program output · o hides"
        self._seen = -1

    def show(self) -> None:
        """A frame: repaint only when the program wrote something since the last one."""
        if self.model.output_version != self._seen and self.display:
            self._seen = self.model.output_version
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        lines = list(self.model.output)[-height:] if height > 0 else []
        pad = height - len(lines)
        if y < pad:
            return Strip.blank(width, self.rich_style)
        text = Text(lines[y - pad].text.expandtabs(), no_wrap=True, overflow="ellipsis")
        text.truncate(width, overflow="ellipsis")
        segments = list(text.render(self.app.console))
        return Strip(segments, text.cell_len).extend_cell_length(width).crop(0, width)
