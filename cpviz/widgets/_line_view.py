"""A Line API view that repaints a line only when the strip it would draw has changed."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import ClassVar

from rich.style import Style
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class LineView(ScrollView):
    """Base for the views the app feeds once a frame.

    A subclass gives each content line a key (everything that line depends on) and draws it
    through :meth:`_painted_line`; once a frame it calls :meth:`_update_line` for the visible
    lines, which asks Textual to repaint a line only when its key moved *and* the strip differs.
    An idle frame therefore costs a few tuple compares, and Textual renders nothing.
    """

    #: Component classes are named ``<prefix>--<name>``.
    COMPONENT_PREFIX: ClassVar[str] = ""

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        #: What each content line last painted, as (key, strip unstyled).
        self._painted: dict[int, tuple[Hashable, Strip]] = {}
        self._styles: dict[str, Style] = {}
        self._size_key: tuple[object, ...] | None = None
        self._content = Size(0, 0)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._painted.clear()
        self._size_key = None

    def _content_size(self) -> Size:
        """The scrollable content size, worked out again only when the widget's size changes.

        ``scrollable_content_region`` looks the widget up in the screen's map on every call,
        which adds up at one call per line per frame.
        """
        key = (self.outer_size, self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        if key != self._size_key:
            self._size_key = key
            self._content = self.scrollable_content_region.size
        return self._content

    def _style(self, name: str) -> Style:
        """A component style, kept until the styles change (Textual drops its copy on refresh)."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(
                f"{self.COMPONENT_PREFIX}--{name}", partial=True
            )
        return style

    def _base_style(self) -> Style:
        """The widget's own style under every line (Textual works it out afresh per call)."""
        style = self._styles.get("")
        if style is None:
            style = self._styles[""] = self.rich_style
        return style

    def _painted_line(self, y: int, key: Hashable, strip: Strip) -> Strip:
        """Note what line ``y`` shows, and style it for Textual; for ``render_line``."""
        self._painted[y] = (key, strip)
        # Simplified, so a line built in pieces on one frame and whole on another hands Textual
        # the same segments (the same picture either way, but screenshots hash the segments).
        return strip.apply_style(self._base_style()).simplify()

    def _update_line(self, y: int, key: Hashable, build: Callable[[], Strip]) -> None:
        """Repaint content line ``y`` only if the strip for ``key`` differs from the one shown."""
        shown = self._painted.get(y)
        if shown is not None:
            if shown[0] == key:
                return
            strip = build()
            if strip == shown[1]:
                self._painted[y] = (key, strip)  # new data, same picture: nothing to paint
                return
        self.refresh(Region(0, y, self._content_size().width, 1))
