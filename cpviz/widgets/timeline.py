"""Every task on one time axis: running, ready but not running, waiting, or frozen."""

from __future__ import annotations

import math
from typing import TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cpviz.engine.model import Model, State, TaskInfo
from cpviz.widgets._format import fmt_count, fmt_window, level_glyph, trim

T = TypeVar("T")

#: Cells given to a task's name before its row of states.
LABEL_W = 14
#: Lines pinned above the task rows: time axis, run / ready / wait band, frozen marker.
HEADER_LINES = 5

#: Glyph and component-class suffix for each state; glyph and colour both differ, so the
#: picture survives a monochrome terminal.
STATE_LOOK: dict[State, tuple[str, str]] = {
    State.NONE: (" ", "none"),
    State.WAITING: ("─", "waiting"),
    State.READY: ("▒", "ready"),
    State.FROZEN: ("▓", "frozen"),
    State.RUNNING: ("█", "running"),
}

#: Candidate tick spacings in seconds, smallest first.
TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)


class Timeline(ScrollView):
    """Line API view over [now - window, now]; only visible rows are drawn, each from cache."""

    COMPONENT_CLASSES = {
        "timeline--label",
        "timeline--exited",
        "timeline--axis",
        "timeline--none",
        "timeline--waiting",
        "timeline--ready",
        "timeline--frozen",
        "timeline--running",
    }

    DEFAULT_CSS = """
    Timeline {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        & > .timeline--label { color: $text; }
        & > .timeline--exited { color: $text-disabled; }
        & > .timeline--axis { color: $text-muted; }
        & > .timeline--waiting { color: $primary-lighten-1 70%; }
        & > .timeline--ready { color: ansi_bright_yellow; }
        & > .timeline--frozen { color: $error-lighten-1; }
        & > .timeline--running { color: $success; }
    }
    """

    now: reactive[float] = reactive(0.0)
    """Display time; the right edge of the window."""

    window_s: reactive[float] = reactive(5.0)
    """Seconds of history across the width."""

    version: reactive[int] = reactive(0)
    """The Model version last pushed down."""

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self._rows: list[TaskInfo] = []
        self._rows_version = -1
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(2048)
        self._band_key: tuple[object, ...] | None = None
        self._band: tuple[list[int], list[int], list[int]] = ([], [], [])

    def on_mount(self) -> None:
        self._sync()

    def on_resize(self) -> None:
        self._sync()

    def watch_version(self) -> None:
        self._sync()

    def watch_window_s(self) -> None:
        self._sync()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def _sync(self) -> None:
        if self._rows_version != self.model.version:
            self._rows = self.model.rows()
            self._rows_version = self.model.version
        rows = len(self._rows)
        self.virtual_size = Size(self.scrollable_content_region.width, HEADER_LINES + rows)
        self.border_title = f"timeline · {fmt_window(self.window_s)} window · {rows} tasks"
        self.border_subtitle = "█ running  ▒ ready, not running  ─ waiting  ▓ frozen"

    # -- geometry -------------------------------------------------------------------------------

    def _frame(self, width: int) -> tuple[int, float, int, float, float]:
        """Columns, seconds per column, index of the last column, and the window's ends.

        The window is snapped to whole columns of absolute time, so a strip drawn for column
        ``last`` stays right until the clock reaches the next column.
        """
        ncols = max(1, width - LABEL_W)
        step = self.window_s / ncols
        last = math.floor(self.now / step)
        t1 = (last + 1) * step
        return ncols, step, last, t1 - self.window_s, t1

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"timeline--{name}", partial=True)

    # -- drawing --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y < HEADER_LINES:
            strip = self._header_line(y, width)
        else:
            _, scroll_y = self.scroll_offset
            index = scroll_y + y - HEADER_LINES
            if 0 <= index < len(self._rows):
                strip = self._task_line(self._rows[index], width)
            else:
                strip = Strip.blank(width)
        return strip.apply_style(self.rich_style)

    def _header_line(self, y: int, width: int) -> Strip:
        ncols, step, last, t0, t1 = self._frame(width)
        version = self.model.version
        key = ("header", y, width, self.window_s, last, version)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if y == 0:
            strip = self._axis(ncols, step, width)
        elif y <= 3:
            band_key = (version, width, self.window_s, last)
            if band_key != self._band_key:
                self._band = self.model.band(t0, t1, ncols)
                self._band_key = band_key
            name, state = (("run", "running"), ("ready", "ready"), ("wait", "waiting"))[y - 1]
            strip = self._band_line(name, state, self._band[y - 1], width)
        else:
            frozen = self.model.frozen_columns(t0, t1, ncols, t1)
            any_frozen = any(frozen)
            label = Segment(
                "frozen".ljust(LABEL_W), self._style("frozen" if any_frozen else "axis")
            )
            segments = [label]
            for is_frozen, run in _runs(frozen):
                glyph = STATE_LOOK[State.FROZEN][0] if is_frozen else " "
                segments.append(Segment(glyph * run, self._style("frozen")))
            strip = Strip(segments).crop_extend(0, width, None)
        self._cache[key] = strip
        return strip

    def _axis(self, ncols: int, step: float, width: int) -> Strip:
        cells = ["─"] * ncols
        tick = next((s for s in TICK_STEPS if s / step >= 10), TICK_STEPS[-1])
        k = 1
        while True:
            pos = ncols - 1 - round(k * tick / step)
            text = f"┴-{k * tick:g}s"
            if pos < 0:
                break
            if pos + len(text) <= ncols - 4:
                cells[pos : pos + len(text)] = list(text)
            k += 1
        cells[ncols - 3 :] = list("now"[-min(3, ncols) :])
        axis = "".join(cells)[:ncols]
        label = f"-{fmt_window(self.window_s)}"
        return Strip(
            [Segment(label.ljust(LABEL_W), self._style("axis")), Segment(axis, self._style("axis"))]
        ).crop_extend(0, width, None)

    def _band_line(self, name: str, state: str, values: list[int], width: int) -> Strip:
        # Scaled to the busiest column in the window, so ten tasks and ten thousand both read.
        peak = max(values, default=0)
        current = values[-1] if values else 0
        label = f"{name:<6}{fmt_count(current):>6}  "
        style = self._style(state)
        chars = [" " if v == 0 else level_glyph(v / peak) for v in values]
        return Strip(
            [Segment(label, self._style("label")), Segment("".join(chars), style)]
        ).crop_extend(0, width, None)

    def _task_line(self, info: TaskInfo, width: int) -> Strip:
        ncols, _, last, t0, t1 = self._frame(width)
        model = self.model
        incidents = model.incidents
        incident_sig = (
            (len(incidents), incidents[-1].incident_id, incidents[-1].end) if incidents else None
        )
        key = (info.task_id, info.seq, info.nsteps, info.exit, width, self.window_s, last,
               incident_sig)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        states = model.task_states(info, t0, t1, ncols)
        alive = info.exit is None or info.exit >= t1
        label_style = self._style("label" if alive else "exited")
        segments = [Segment(trim(info.name, LABEL_W - 1).ljust(LABEL_W), label_style)]
        for state, run in _runs(states):
            glyph, look = STATE_LOOK[state]
            segments.append(Segment(glyph * run, self._style(look)))
        strip = Strip(segments).crop_extend(0, width, None)
        self._cache[key] = strip
        return strip


def _runs(values: list[T]) -> list[tuple[T, int]]:
    """Consecutive equal values as (value, count): one Segment per run, not per cell."""
    out: list[tuple[T, int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out

