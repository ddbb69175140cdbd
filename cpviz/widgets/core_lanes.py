"""One lane per logical CPU, on the timeline's axis: what the OS says each core did, and whose
work it was."""

from __future__ import annotations

import math
from functools import lru_cache, partial
from itertools import groupby
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.strip import Strip

from cpviz.engine.events import ROLES, CoreSample, Role
from cpviz.engine.model import CoreColumn, CoreWindow, Model
from cpviz.widgets._format import LEVELS, fmt_count, trim
from cpviz.widgets._line_view import LineView
from cpviz.widgets.axis import LABEL_W, Axis

#: Placements below this share of a core are noise, not "this role ran here".
MIN_ROLE_PCT = 5.0
#: Tallest a lane gets, in rows.
MAX_ROWS = 4
#: Display seconds between updates of the label's figures and the context-switch rate.
FIGURES_EVERY_S = 0.5
#: Above this height character (1 + eighths of a row; 0 is "no sample") a column counts as busy.
BUSY_HEIGHT = 2

#: Roles shown in the legend, ``other`` (work of an owner no role names) last. Each has a
#: solid colour of its own: muted and disabled text both rendered white in the legend.
LEGEND_ROLES = tuple(r for r in ROLES if r != "other")

#: What a frame's lines depend on besides their row: (width, scroll y, cores per lane, rows
#: per lane, the axis, the figures' period, the newest sample in the window).
LaneView = tuple[int, int, int, int, Axis, int | None, float | None]


def fold(cores: int, rows: int) -> tuple[int, int]:
    """(cores per lane, rows per lane) so every core fits in ``rows`` lines.

    Few cores get lanes up to MAX_ROWS tall (32 levels); more cores than rows fold into lanes
    of neighbouring cores, each showing their mean, so 64 cores still read in eight lines.
    """
    rows, cores = max(1, rows), max(1, cores)
    if cores <= rows:
        return 1, max(1, min(MAX_ROWS, rows // cores))
    return math.ceil(cores / rows), 1


def lane_name(lane: int, group: int, cores: int) -> str:
    """``cpu3``, or ``cpu8-15`` for a lane of several cores."""
    first = lane * group
    last = min(cores, first + group) - 1
    return f"cpu{first}" if last == first else f"cpu{first}-{last}"


class CoreLanes(LineView, can_focus=False):
    """Line API view: each lane row is a cached strip, redrawn when the axis or the data move.

    The lanes take the timeline's window, width and display time (:meth:`show`), so a column
    here is the same span of time, at the same x, as the task rows' column below it.
    """

    COMPONENT_PREFIX = "core-lanes"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "core-lanes--label",
        "core-lanes--idle",
        *(f"core-lanes--{role}" for role in ROLES),
    }

    DEFAULT_CSS = """
    CoreLanes {
        height: auto;
        overflow-x: hidden;
        overflow-y: hidden;
        & > .core-lanes--label { color: $text-muted; }
        & > .core-lanes--idle { color: $text-disabled; }
        & > .core-lanes--other { color: ansi_bright_black; }
        & > .core-lanes--loop { color: $primary; }
        & > .core-lanes--thread { color: $accent; }
        & > .core-lanes--process { color: $success; }
        & > .core-lanes--server { color: ansi_bright_magenta; }
        & > .core-lanes--ui { color: ansi_bright_cyan; }
        & > .core-lanes--probe { color: ansi_bright_yellow; }
    }
    """

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        #: Display time (the app's, frozen while paused); lanes end here. Set through :meth:`show`.
        self.now = 0.0
        #: The timeline's window and content width. Set through :meth:`show`.
        self.window_s = 5.0
        self.axis_width: int | None = None
        #: Lines the lanes may take (the legend apart); the app sets it by terminal height.
        self.max_rows = 2 * MAX_ROWS
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        self._window = CoreWindow(model)
        #: Per lane, the heights (one character a column, see _row_table) and style runs.
        self._cells_by_lane: list[tuple[str, list[tuple[int, int, Style]]]] = []
        self._cells_key: tuple[object, ...] | None = None
        self._columns = _LaneColumns(self._window)
        self._frame_key: tuple[object, ...] | None = None
        self._height: int | None = None
        self._subtitle = ""
        #: The figures' period (see show), and the newest sample they show.
        self._period = -1
        self._sample: CoreSample | None = None
        self._newest_memo: tuple[object, float | None] = (None, None)

    def on_mount(self) -> None:
        self._sync_title()
        self._sync_size()

    def on_resize(self) -> None:
        self._frame_key = None
        self._sync_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._cells_key = None
        self._frame_key = None
        if self.is_mounted:
            self._sync_title()

    def show(self, now: float, window_s: float | None = None, axis_width: int | None = None
             ) -> None:
        """Take a frame's display time, and the timeline's window and content width.

        Lines repaint only when what they draw moved: the axis (a new column), a new sample in
        view, or the labels' figures, which change at most every FIGURES_EVERY_S.
        """
        self.now = now
        if window_s is not None:
            self.window_s = window_s
        self.axis_width = axis_width
        if not self.is_mounted:
            return
        self._sync_size()
        period = math.floor(now / FIGURES_EVERY_S)
        if period != self._period or (self._sample is None and self.model.samples):
            self._period = period
            self._sample = self._latest(now)
            self._sync_subtitle()
        width, height = size = self._content_size()
        view = self._view(width)
        frame_key = (size, view)
        if frame_key == self._frame_key:
            return
        self._frame_key = frame_key
        dirty: list[int] = []
        for y in range(height):
            key = self._line_key(y, view)
            self._update_line(y, key, partial(self._line, key, width), dirty)
        self._refresh_lines(dirty)

    def _latest(self, now: float) -> CoreSample | None:
        """The newest sample at display time ``now`` (a paused view shows its moment's)."""
        for sample in reversed(self.model.samples):
            if sample.t <= now:
                return sample
        return None

    @property
    def folding(self) -> tuple[int, int]:
        """(cores per lane, rows per lane) for the rows the lanes may take."""
        return fold(self.model.cores, self.max_rows)

    def _sync_size(self) -> None:
        group, per_lane = self.folding
        lanes = math.ceil(self.model.cores / group)
        rows = lanes * per_lane
        if rows != self._height:
            self._height = rows
            self.styles.height = rows + 2  # the border
        size = Size(self._content_size().width, rows)
        if self.virtual_size != size:
            self.virtual_size = size

    def _sync_subtitle(self) -> None:
        subtitle = f"{fmt_count(self.model.ctx_switches_per_s)} ctx switches/s"
        if subtitle != self._subtitle:
            # The border setter repaints the whole widget, so only on a real change.
            self._subtitle = subtitle
            self.border_subtitle = subtitle

    # -- drawing --------------------------------------------------------------------------------

    def _role_style(self, role: str | None) -> Style:
        return self._style(role if role in ROLES else "idle")

    def _axis(self, width: int) -> Axis:
        return Axis.of(min(width, self.axis_width or width), self.window_s, self.now)

    def render_line(self, y: int) -> Strip:
        width = self._content_size().width
        key = self._line_key(y, self._view(width))
        return self._painted_line(y, key, self._line(key, width))

    def _view(self, width: int) -> LaneView:
        """What every line of this frame depends on besides its own row."""
        group, per_lane = self.folding
        axis = self._axis(width)
        period = self._period if self._sample is not None else None
        return (width, self.scroll_offset.y, group, per_lane, axis, period,
                self._window_newest(axis))

    def _line_key(self, y: int, view: LaneView) -> tuple[object, ...]:
        """Everything content line ``y`` depends on: equal keys draw equal strips."""
        width, scroll_y, group, per_lane, axis, period, newest = view
        index = scroll_y + y
        lanes = math.ceil(self.model.cores / group) * per_lane
        if index < lanes:
            # Samples up to the axis's end are in view; the newest one moves the picture.
            return ("lane", index // per_lane, index % per_lane, group, per_lane, width, axis,
                    newest, period)
        return ("blank", width)

    def _window_newest(self, axis: Axis) -> float | None:
        """The newest sample the window shows; a sample past it changes nothing drawn.

        Remembered per window end and sample count: paused, every later sample would be
        stepped over again on each frame.
        """
        samples = self.model.samples
        memo = (axis.t1, len(samples), samples[-1].t if samples else None)
        if memo == self._newest_memo[0]:
            return self._newest_memo[1]
        newest = None
        for sample in reversed(samples):
            if sample.t <= axis.t1:
                newest = sample.t
                break
        self._newest_memo = (memo, newest)
        return newest

    def _line(self, key: tuple[object, ...], width: int) -> Strip:
        """The strip for ``key``, from cache when it was drawn before."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if key[0] == "lane":
            _, lane, row, group, per_lane, _, axis, _, _ = key
            assert isinstance(lane, int) and isinstance(row, int) and isinstance(axis, Axis)
            assert isinstance(group, int) and isinstance(per_lane, int)
            strip = self._lane(lane, row, group, per_lane, axis, width)
        else:
            strip = Strip.blank(width)
        self._cache[key] = strip
        return strip

    def legend(self) -> Text:
        """The lanes' title: a swatch of each role's colour beside its name.

        It rides in the top border: on a short screen a line of its own would cost a task row.
        """
        title = Text("cores ")
        for role in (*LEGEND_ROLES, "other"):
            title.append(" █", self._role_style(role))
            title.append(f" {role}")
        return title

    def _sync_title(self) -> None:
        self.border_title = self.legend()

    def _cells(
        self, lane: int, group: int, per_lane: int, axis: Axis
    ) -> tuple[str, list[tuple[int, int, Style]]]:
        """One lane's columns: heights as one character each (see _row_table), and style runs.

        Worked out once per frame for every lane together, and shared by a lane's rows.
        """
        newest = self._window_newest(axis)
        key = (group, per_lane, axis, newest)
        if key != self._cells_key:
            model = self.model
            self._cells_by_lane = [
                (heights, self._style_runs(heights, roles))
                for heights, roles in self._columns.window(
                    axis, group, per_lane, newest, (model.cores, id(model.samples)))
            ]
            self._cells_key = key
        return self._cells_by_lane[lane]

    def _style_runs(self, heights: str, roles: list[Role | None]
                    ) -> list[tuple[int, int, Style]]:
        """Consecutive columns of one role as (start, end, style): one Segment per run.

        A busy column that none of the watched processes accounts for (another program, or
        a process too new to be known) is "other", as the legend says; only an idle column's
        sliver keeps the idle colour.
        """
        shown = [role if role is not None or ord(h) <= BUSY_HEIGHT else "other"
                 for h, role in zip(heights, roles, strict=False)]
        runs: list[tuple[int, int, Style]] = []
        start = 0
        for role, same in groupby(shown):
            end = start + sum(1 for _ in same)
            runs.append((start, end, self._role_style(role)))
            start = end
        return runs

    @staticmethod
    @lru_cache(maxsize=64)
    def _row_table(per_lane: int, row: int) -> dict[int, str]:
        """``str.translate`` table from a column's height character to its glyph on ``row``."""
        below = (per_lane - 1 - row) * len(LEVELS)  # eighths in the rows under this one
        table = {0: " "}  # no sample in the column
        for height in range(per_lane * len(LEVELS) + 1):
            eighths = height - below
            if eighths >= len(LEVELS):
                glyph = LEVELS[-1]
            elif eighths > 0:
                glyph = LEVELS[eighths - 1]
            else:  # a sliver on the bottom row: "sampled, idle" differs from "no data"
                glyph = LEVELS[0] if below == 0 else " "
            table[1 + height] = glyph
        return table

    def _lane(self, lane: int, row: int, group: int, per_lane: int, axis: Axis,
              width: int) -> Strip:
        """Row ``row`` (0 = top) of a lane ``per_lane`` rows tall, on ``axis``."""
        heights, runs = self._cells(lane, group, per_lane, axis)
        glyphs = heights.translate(self._row_table(per_lane, row))
        segments = self._label(lane, row, group, per_lane)
        # Labels are ASCII and the glyphs one cell each, so the length is known without a
        # crop_extend pass over the segments (the only way a too long line gets cut).
        cells = sum(len(s.text) for s in segments) + len(glyphs)
        segments += [Segment(glyphs[start:end], style) for start, end, style in runs]
        if cells < width:
            segments.append(Segment(" " * (width - cells)))
        elif cells > width:
            return Strip(segments).crop_extend(0, width, None)
        return Strip(segments, width)

    def _label(self, lane: int, row: int, group: int, per_lane: int) -> list[Segment]:
        """The lane's name and latest load; its busiest roles on the next row, if it has one.

        With one row a lane, the colour of its columns says whose work it was (the legend).
        """
        cores = self.model.cores
        latest = self._sample
        label = self._style("label")
        if row == 0:
            name = lane_name(lane, group, cores)
            text = name
            if latest is not None and latest.percents:
                got = latest.percents[lane * group : min(cores, (lane + 1) * group)]
                if got:
                    text = f"{trim(name, LABEL_W - 7):<{LABEL_W - 6}}{sum(got) / len(got):>3.0f}% "
            return [Segment(text.ljust(LABEL_W)[:LABEL_W], label)]
        if row == 1 and latest is not None:
            lane_cores = range(lane * group, min(cores, (lane + 1) * group))
            roles: list[str] = []
            for p in sorted(latest.placements, key=lambda p: -p.cpu_pct):
                if p.core in lane_cores and p.cpu_pct >= MIN_ROLE_PCT and p.role not in roles:
                    roles.append(p.role)
            segments = [Segment(" ")]
            room = LABEL_W - 2
            for role in roles:
                name = trim(role, room)
                if not name:
                    break
                segments.append(Segment(name, self._role_style(role)))
                room -= len(name) + 1
                if room <= 0:
                    break
                segments.append(Segment(" "))
            used = sum(len(s.text) for s in segments)
            return [*segments, Segment(" " * max(0, LABEL_W - used))]
        return [Segment(" " * LABEL_W)]


def _heights(columns: list[CoreColumn], per_lane: int) -> str:
    """Each column's height in eighths of a row, as one character (NUL: no sample)."""
    top = per_lane * len(LEVELS)
    scale = top / 100.0
    return "".join(
        "\0" if c.pct is None else chr(1 + min(top, round(c.pct * scale)))
        for c in columns
    )


class _LaneColumns:
    """Per lane, the window's column heights (see _row_table) and roles, kept from frame to frame.

    A column is final once a sample at or after its end has been folded (a sample stands for the
    interval since the one before it, so no later sample reaches back into it). Final columns
    are kept; a frame works out only the columns after them, the two or three newest, so the
    lanes' cost follows the columns that moved in, not the width.
    """

    def __init__(self, window: CoreWindow) -> None:
        self._core_window = window
        self._key: tuple[object, ...] | None = None
        #: Absolute index of the first column kept, the last one final, the last one drawn.
        self._base = 0
        self._final = -1
        self._last = -1
        self._heights: list[str] = []
        self._roles: list[list[Role | None]] = []

    def window(self, axis: Axis, group: int, per_lane: int, newest: float | None,
               source: tuple[object, ...]) -> list[tuple[str, list[Role | None]]]:
        """Per lane, (heights, roles) of the axis's columns; ``newest`` is the newest sample in
        the window, ``source`` what the samples are (a new Model history starts afresh)."""
        key = (axis.step, group, per_lane, source)
        if key != self._key or axis.first < self._base or axis.last < self._last:
            # New scale, grouping or history, or a move back in time: start afresh.
            self._key = key
            self._base = axis.first
            self._final = axis.first - 1
            self._heights = []
            self._roles = []
        drop = axis.first - self._base
        if drop > 0:
            self._heights = [h[drop:] for h in self._heights]
            self._roles = [r[drop:] for r in self._roles]
            self._base = axis.first
        start = max(axis.first, self._final + 1)
        keep = start - self._base
        count = axis.last - start + 1
        fresh = self._core_window.lanes(axis.step, start, count, group, until=axis.t1)
        if not self._heights:
            self._heights = [""] * len(fresh)
            self._roles = [[] for _ in fresh]
        for i, columns in enumerate(fresh):
            self._heights[i] = self._heights[i][:keep] + _heights(columns, per_lane)
            del self._roles[i][keep:]
            self._roles[i].extend(c.role for c in columns)
        self._last = axis.last
        if newest is not None:
            self._final = max(self._final, min(axis.last, math.floor(newest / axis.step) - 1))
        return list(zip(self._heights, self._roles, strict=True))
