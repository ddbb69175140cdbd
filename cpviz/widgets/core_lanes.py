"""One lane per logical CPU: what the OS says each core did, and whose work it was."""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.strip import Strip

from cpviz.engine.events import ROLES, CoreSample
from cpviz.engine.model import CoreWindow, Model
from cpviz.widgets._format import LEVELS, fmt_count, trim
from cpviz.widgets._line_view import LineView

#: Seconds of history each lane shows.
HISTORY_S = 30.0
#: Placements below this share of a core are noise, not "this role ran here".
MIN_ROLE_PCT = 5.0
#: Tallest a lane gets, in rows.
MAX_ROWS = 4
#: Display seconds per tick: the lanes move on (new samples, next column) once a tick.
TICK_S = 0.5
#: Display seconds between updates of the context-switch rate under the lanes.
SUBTITLE_EVERY_S = 2.0
#: Roles shown in the legend, ``other`` (work of an owner no role names) last. Each has a
#: solid colour of its own: muted and disabled text both rendered white in the legend.
LEGEND_ROLES = tuple(r for r in ROLES if r != "other")

#: What a frame's lines depend on besides their row: (width, scroll y, rows per core, last
#: column, latest sample time).
LaneView = tuple[int, int, int, int, float | None]


class CoreLanes(LineView, can_focus=False):
    """Line API view: each lane row is a cached strip, rebuilt at a tick that brings new data."""

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
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        #: Per core, the cells of its lane (see _cells), and what they were worked out for.
        self._cells_by_core: list[tuple[str, list[tuple[int, int, Style]]]] = []
        self._window = CoreWindow(model)
        self._cells_key: tuple[object, ...] | None = None
        self._frame_key: tuple[object, ...] | None = None
        self._subtitle_period: int | None = None
        self._subtitle = ""
        #: The tick the lanes show (see show), and the newest sample they show.
        self._tick = 0
        self._sample: CoreSample | None = None

    def on_mount(self) -> None:
        self.border_title = "cores"
        self._sync_size()

    def on_resize(self) -> None:
        self._frame_key = None
        self._sync_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._cells_key = None
        self._frame_key = None

    def show(self, now: float) -> None:
        """Take a frame's display time; on a new tick, repaint only the lines that differ.

        The lanes move in ticks of TICK_S display seconds: the sampler reports ten times a
        second, and a 30 s history does not need a repaint for each report. Ticks fall on the
        same instants as the alarm's, so their repaints share one screen update.
        """
        self.now = now
        if not self.is_mounted:
            return
        tick = math.floor(now / TICK_S)
        if tick == self._tick and self._sample is not None:
            return
        self._tick = tick
        self._sample = self.model.latest_sample()
        self._sync_subtitle()
        width, height = size = self._content_size()
        view = self._view(width, height)
        # Nothing drawn can change unless the view did (a new sample, a column, the size).
        frame_key = (size, view)
        if frame_key == self._frame_key:
            return
        self._frame_key = frame_key
        for y in range(height):
            key = self._line_key(y, view)
            self._update_line(y, key, partial(self._line, key, width))

    def _column(self, width: int) -> int:
        """The history column the current tick falls in; columns are aligned to absolute time."""
        return math.floor(self._tick * TICK_S / (HISTORY_S / self._geometry(width)[2]))

    @property
    def rows_per_core(self) -> int:
        """Lanes grow up to four rows tall (32 levels) when there is room, one row when not."""
        width, height = self._content_size()
        return self._view(width, height)[2]

    def _sync_size(self) -> None:
        # Lanes plus the legend; never wider than the widget (no horizontal scrolling).
        height = self.model.cores * self.rows_per_core + 1
        size = Size(self._content_size().width, height)
        if self.virtual_size != size:
            self.virtual_size = size
        self._subtitle_period = None
        self._sync_subtitle()

    def _sync_subtitle(self) -> None:
        """Once per SUBTITLE_EVERY_S: the rate is noisy, and setting a border repaints it all."""
        period = math.floor(self._tick * TICK_S / SUBTITLE_EVERY_S)
        if period == self._subtitle_period:
            return
        self._subtitle_period = period
        subtitle = (
            f"last {HISTORY_S:g} s · {fmt_count(self.model.ctx_switches_per_s)} ctx switches/s"
        )
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            self.border_subtitle = subtitle

    # -- drawing --------------------------------------------------------------------------------

    def _role_style(self, role: str | None) -> Style:
        return self._style(role if role in ROLES else "idle")

    def render_line(self, y: int) -> Strip:
        width, height = self._content_size()
        key = self._line_key(y, self._view(width, height))
        return self._painted_line(y, key, self._line(key, width))

    def _geometry(self, width: int) -> tuple[int, int, int]:
        """Label cells, tail cells and history columns for a content ``width``."""
        label_w = len(f"cpu{max(0, self.model.cores - 1)}") + 1
        tail_w = min(22, max(6, width // 4))
        return label_w, tail_w, max(1, width - label_w - tail_w)

    def _view(self, width: int, height: int) -> LaneView:
        """(width, scroll y, rows per core, last column, latest sample time), once per frame.

        Columns are aligned to absolute time, so the picture shifts one whole cell at a time.
        """
        per_core = max(1, min(MAX_ROWS, (height - 1) // max(1, self.model.cores)))
        sample = self._sample
        return (width, self.scroll_offset.y, per_core, self._column(width),
                sample.t if sample is not None else None)

    def _line_key(self, y: int, view: LaneView) -> tuple[object, ...]:
        """Everything content line ``y`` depends on: equal keys draw equal strips."""
        width, scroll_y, per_core, column, latest_t = view
        index = scroll_y + y
        lanes = self.model.cores * per_core
        if index < lanes:
            return ("lane", index // per_core, index % per_core, per_core, width, column,
                    latest_t)
        if index == lanes:
            return ("legend", width)
        return ("blank", width)

    def _line(self, key: tuple[object, ...], width: int) -> Strip:
        """The strip for ``key``, from cache when it was drawn before."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if key[0] == "lane":
            _, core, row, per_core, _, column, _ = key
            assert isinstance(core, int) and isinstance(row, int)
            assert isinstance(per_core, int) and isinstance(column, int)
            strip = self._lane(core, row, per_core, column, width)
        elif key[0] == "legend":
            strip = self._legend(width)
        else:
            strip = Strip.blank(width)
        self._cache[key] = strip
        return strip

    def _legend(self, width: int) -> Strip:
        segments: list[Segment] = []
        for role in (*LEGEND_ROLES, "other"):
            segments.append(Segment("█", self._role_style(role)))
            segments.append(Segment(f" {role} ", self._style("label")))
        return Strip(segments).crop_extend(0, width, None)

    def _cells(
        self, core: int, per_core: int, ncols: int, column: int
    ) -> tuple[str, list[tuple[int, int, Style]]]:
        """One lane's columns: heights as one character each (see _row_table), and style runs.

        Worked out once per sample for every core together, and shared by a lane's rows.
        """
        until = self._sample.t if self._sample is not None else -math.inf
        key = (per_core, ncols, column, until)
        if key != self._cells_key:
            t1 = (column + 1) * (HISTORY_S / ncols)
            top = per_core * len(LEVELS)
            cells = []
            for lane in self._window.columns(t1 - HISTORY_S, t1, ncols, until):
                heights = "".join(
                    "\0" if c.pct is None
                    else chr(1 + min(top, round(c.pct / 100.0 * per_core * len(LEVELS))))
                    for c in lane
                )
                runs: list[tuple[int, int, Style]] = []
                for i, c in enumerate(lane):
                    style = self._role_style(c.role)
                    if runs and runs[-1][2] == style:
                        runs[-1] = (runs[-1][0], i + 1, style)
                    else:
                        runs.append((i, i + 1, style))
                cells.append((heights, runs))
            self._cells_by_core = cells
            self._cells_key = key
        return self._cells_by_core[core]

    @staticmethod
    @lru_cache(maxsize=64)
    def _row_table(per_core: int, row: int) -> dict[int, str]:
        """``str.translate`` table from a column's height character to its glyph on ``row``."""
        below = (per_core - 1 - row) * len(LEVELS)  # eighths in the rows under this one
        table = {0: " "}  # no sample in the column
        for height in range(per_core * len(LEVELS) + 1):
            eighths = height - below
            if eighths >= len(LEVELS):
                glyph = LEVELS[-1]
            elif eighths > 0:
                glyph = LEVELS[eighths - 1]
            else:  # a sliver on the bottom row: "sampled, idle" differs from "no data"
                glyph = LEVELS[0] if below == 0 else " "
            table[1 + height] = glyph
        return table

    def _lane(self, core: int, row: int, per_core: int, column: int, width: int) -> Strip:
        """Row ``row`` (0 = top) of a lane ``per_core`` rows tall, ending at ``column``."""
        label_w, tail_w, ncols = self._geometry(width)
        latest = self._sample
        heights, runs = self._cells(core, per_core, ncols, column)
        glyphs = heights.translate(self._row_table(per_core, row))
        label = f"cpu{core}" if row == 0 else ""
        segments = [Segment(label.ljust(label_w), self._style("label"))]
        segments += [Segment(glyphs[start:end], style) for start, end, style in runs]

        tail = [Segment(" ")]
        if row == 0 and latest is not None and core < len(latest.percents):
            tail.append(Segment(f"{latest.percents[core]:>3.0f}% ", Style(bold=True)))
            roles: list[str] = []
            for p in sorted(latest.placements, key=lambda p: -p.cpu_pct):
                if p.core == core and p.cpu_pct >= MIN_ROLE_PCT and p.role not in roles:
                    roles.append(p.role)
            room = tail_w - 6
            for role in roles:
                name = trim(role, room)
                if not name:
                    break
                tail.append(Segment(name, self._role_style(role)))
                room -= len(name) + 1
                if room > 0:
                    tail.append(Segment(" "))
                if room <= 1:
                    break
        return Strip(segments + tail).crop_extend(0, width, None)
