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
        #: The strip :meth:`_update_line` built for a line it asked to repaint, as (key, strip).
        self._built: dict[int, tuple[Hashable, Strip]] = {}
        self._styles: dict[str, Style] = {}
        self._size_key: tuple[object, ...] | None = None
        self._content = Size(0, 0)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._painted.clear()
        self._built.clear()
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

    def _set_virtual_size(self, size: Size) -> None:
        """Take a new scrollable size; relayout the screen only if a scrollbar comes or goes.

        Assigning ``virtual_size`` repaints the whole widget and lays out the whole screen
        (about 5 ms with a thousand rows), and a timeline's row count changes with every task
        that comes or goes. In a widget of set height whose scrollbars stay as they are, the
        layout cannot change: the size is set quietly and only the scrollbars are updated, as
        Textual does itself on a resize; the lines that moved are repainted by
        :meth:`_update_line`. An auto-height widget grows with its rows, so it still lays out.
        """
        old = self.virtual_size
        if size == old:
            return
        height_rule = self.styles.height
        if height_rule is not None and height_rule.is_auto:
            self.virtual_size = size  # the widget's own height follows its rows: a layout
            return
        width, height = self.container_size
        if self.styles.overflow_y == "auto":
            same = (old.height > height) == (size.height > height)
        else:
            same = True  # "hidden" or "scroll": the vertical scrollbar does not depend on it
        if self.styles.overflow_x == "auto":
            same = same and (old.width > width) == (size.width > width)
        if not same or not self.is_mounted:
            self.virtual_size = size
            return
        self.set_reactive(ScrollView.virtual_size, size)
        self._scroll_update(size)

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

    def _update_line(self, y: int, key: Hashable, build: Callable[[], Strip],
                     dirty: list[int] | None = None) -> None:
        """Repaint content line ``y`` only if the strip for ``key`` differs from the one shown.

        With ``dirty``, the line is noted there instead, for one :meth:`_refresh_lines` call.
        """
        shown = self._painted.get(y)
        if shown is not None:
            if shown[0] == key:
                return
            strip = build()
            if strip == shown[1]:
                self._painted[y] = (key, strip)  # new data, same picture: nothing to paint
                return
            self._built[y] = (key, strip)
        if dirty is not None:
            dirty.append(y)
        else:
            self.refresh(Region(0, y, self._content_size().width, 1))

    def _take_built(self, y: int, key: Hashable) -> Strip | None:
        """The strip :meth:`_update_line` just built for line ``y`` and ``key``, once: for
        views whose lines are not cached by key, so ``render_line`` does not draw it twice."""
        built = self._built.pop(y, None)
        return built[1] if built is not None and built[0] == key else None

    def _refresh_lines(self, dirty: list[int]) -> None:
        """Repaint the lines noted by :meth:`_update_line` in one call, neighbours as one region.

        Each ``refresh`` call clears the widget's caches and asks for a screen update, so a frame
        that moved every row asks once, not once a row.
        """
        built = self._built
        # Strips built on earlier passes and never drawn (hidden, scrolled away) go stale.
        self._built = {y: built[y] for y in dirty if y in built}
        if not dirty:
            return
        width = self._content_size().width
        regions: list[Region] = []
        start = prev = dirty[0]
        for y in dirty[1:]:
            if y != prev + 1:
                regions.append(Region(0, start, width, prev - start + 1))
                start = y
            prev = y
        regions.append(Region(0, start, width, prev - start + 1))
        self.refresh(*regions)
