"""Every task on one time axis: running, ready but not running, waiting, or frozen."""

from __future__ import annotations

from functools import partial
from typing import ClassVar, TypeVar

from rich.segment import Segment
from textual.cache import LRUCache
from textual.geometry import Size
from textual.strip import Strip

from cpviz.engine.model import BandWindow, Model, State, TaskInfo
from cpviz.widgets._format import fmt_count, fmt_window, level_glyph, trim
from cpviz.widgets._line_view import LineView
from cpviz.widgets._task_rows import TaskRows
from cpviz.widgets.axis import LABEL_W, snap_window

T = TypeVar("T")

__all__ = ["LABEL_W", "Timeline", "snap_window"]

#: Lines pinned above the task rows: time axis, run / ready / wait band, frozen marker.
HEADER = ("axis", "run", "ready", "wait", "frozen")
#: On short screens the band goes, so some task rows still fit.
SHORT_HEADER = ("axis", "frozen")
#: Content height below which the short header is used.
SHORT_BELOW = 12

#: Glyph and component-class suffix for each state; glyph and colour both differ, so the
#: picture survives a monochrome terminal.
STATE_LOOK: dict[State, tuple[str, str]] = {
    State.NONE: (" ", "none"),
    State.WAITING: ("─", "waiting"),
    State.RAN: ("╂", "running"),
    State.READY: ("▒", "ready"),
    State.FROZEN: ("▓", "frozen"),
    State.RUNNING: ("█", "running"),
}

#: The border's key to the glyphs (the help screen spells out the same).
LEGEND = "█ running  ╂ ran briefly  ▒ ready, not running  ─ waiting  ▓ frozen"

#: What a frame's lines depend on besides their data: (width, header, scroll y, last column,
#: whether a freeze shows in the window).
RowView = tuple[int, tuple[str, ...], int, int, bool]

#: Candidate tick spacings in seconds, smallest first.
TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)


class Timeline(LineView):
    """Line API view over [now - window, now]; only visible rows are drawn, each from cache."""

    COMPONENT_PREFIX = "timeline"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
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

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        #: Display time; the right edge of the window. Set through :meth:`show`.
        self.now = 0.0
        #: Seconds of history across the width. Set through :meth:`show`.
        self.window_s = 5.0
        #: Whether cpviz's own tasks get rows (the app's toggle); hidden by default.
        self.show_own = False
        self._rows: list[TaskInfo] = []
        self._task_rows = TaskRows(model)
        self._bands = BandWindow(model)
        self._spans_key: tuple[object, ...] | None = None
        self._spans: list[tuple[float, float]] = []
        #: Lines drawn lately, for a frame that shows one again (scrolling, pausing). Sized for
        #: a few screens: busy rows can be hundreds of segments each.
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(512)
        self._band_key: tuple[object, ...] | None = None
        self._band: tuple[list[int], list[int], list[int]] = ([], [], [])
        self._title = ""
        self._frame_key: tuple[object, ...] | None = None
        self._quiet = False
        self._view_memo: tuple[tuple[object, ...] | None, RowView] = (None, (0, (), 0, 0, False))

    def on_mount(self) -> None:
        self.border_subtitle = LEGEND
        self._sync()

    def on_resize(self) -> None:
        self._cache.clear()
        self._frame_key = None
        self._sync()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._frame_key = None

    def show(self, now: float, window_s: float) -> None:
        """Take a frame's display time and window; repaint only the lines that now differ."""
        self.now, self.window_s = now, window_s
        if not self.is_mounted:
            return
        size = self._content_size()
        model = self.model
        _, _, last, t0, t1 = self._frame(size.width)
        # Nothing drawn can change unless one of these did; most idle frames stop here. With
        # no row and no freeze in the window, the window moving changes nothing either.
        quiet = self._quiet and not self._frozen_within(t0, t1)
        frame_key = (size, self.scroll_offset.y, window_s, None if quiet else last,
                     model.tasks_version, model.incidents_version, self.show_own)
        if frame_key == self._frame_key:
            return
        self._frame_key = frame_key
        self._sync()
        self._refresh_changed()

    def _sync(self) -> None:
        width = self._content_size().width
        _, _, _, t0, t1 = self._frame(width)
        # Only tasks alive somewhere in the window get a row: finished ones scroll away.
        version = self._task_rows.version
        self._rows = self._task_rows.rows(t0, t1, self.show_own)
        if self._task_rows.version != version or not self._rows:
            # No row, and every task already gone: as the window moves on, none comes back.
            self._quiet = not self._rows and all(
                info.exit is not None for info in self.model.tasks.values()
            )
        rows = len(self._rows)
        self._set_virtual_size(Size(width, len(self.header) + rows))
        title = f"timeline · {fmt_window(self.window_s)} window · {rows} tasks"
        if title != self._title:
            # The border_title setter repaints the whole widget, so only on a real change.
            self._title = title
            self.border_title = title

    def _refresh_changed(self) -> None:
        """Ask Textual to repaint exactly the visible lines whose strip changed."""
        width, height = self._content_size()
        view = self._view(width)
        dirty: list[int] = []
        for y in range(height):
            key, info = self._line_key(y, view)
            self._update_line(y, key, partial(self._line, key, info, width), dirty)
        self._refresh_lines(dirty)

    # -- geometry -------------------------------------------------------------------------------

    def _view(self, width: int) -> RowView:
        """What every line of this frame depends on besides its own data.

        Remembered for the frame: ``render_line`` asks once per line.
        """
        header, scroll_y = self.header, self.scroll_offset.y
        memo = (width, header, scroll_y, self.now, self.window_s, self.model.incidents_version)
        if memo != self._view_memo[0]:
            _, _, last, t0, t1 = self._frame(width)
            self._view_memo = (memo, (width, header, scroll_y, last, self._frozen_within(t0, t1)))
        return self._view_memo[1]

    def _frozen_within(self, t0: float, t1: float) -> bool:
        """Whether any freeze (an open one runs to the window's end) overlaps [t0, t1]."""
        for inc in reversed(self.model.incidents):
            if inc.end is not None and inc.end < t0:
                return False  # one loop freezes once at a time: earlier ones ended earlier
            if inc.since <= t1:
                return True
        return False

    def axis_width(self) -> int:
        """Cells across the label and the time columns (for views that share the axis)."""
        return self._content_size().width

    @property
    def header(self) -> tuple[str, ...]:
        """The pinned lines, by name, for the current height."""
        return SHORT_HEADER if self._content_size().height < SHORT_BELOW else HEADER

    def _frame(self, width: int) -> tuple[int, float, int, float, float]:
        return snap_window(width, self.window_s, self.now)

    # -- drawing --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self._content_size().width
        key, info = self._line_key(y, self._view(width))
        return self._painted_line(y, key, self._line(key, info, width))

    def _line_key(
        self, y: int, view: RowView
    ) -> tuple[tuple[object, ...], TaskInfo | None]:
        """Everything content line ``y`` depends on (equal keys draw equal strips), and its task.

        ``view`` is worked out once per frame. Lines key on the data they draw (the narrow Model
        versions), not on ``model.version``, which bumps with every core sample; lines with
        nothing in the window key without the column, so they stay put as it moves.
        """
        width, header, scroll_y, last, frozen = view
        model = self.model
        if y < len(header):
            kind = header[y]
            if kind == "axis":  # ticks are relative to now: they never scroll
                return ("axis", width, self.window_s), None
            if kind == "frozen":
                where = (last, model.incidents_version) if frozen else None
                return ("frozen", width, self.window_s, where), None
            # The band counts tasks alive in the window, which are exactly the rows.
            band = (last, model.tasks_version, self.show_own) if self._rows else None
            return (kind, width, self.window_s, band), None
        index = scroll_y + y - len(header)
        if 0 <= index < len(self._rows):
            info = self._rows[index]
            # Frozen spans and the open incident colour only rows of tasks still alive.
            incidents = model.incidents_version if info.exit is None else None
            key = ("task", info.task_id, info.seq, info.nsteps, info.exit, width,
                   self.window_s, last, incidents, info.name)
            return key, info
        return ("blank", width), None

    def _line(self, key: tuple[object, ...], info: TaskInfo | None, width: int) -> Strip:
        """The strip for ``key``, from cache when it was drawn before."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        ncols, step, _, t0, t1 = self._frame(width)
        kind = key[0]
        bands = {"run": (0, "running"), "ready": (1, "ready"), "wait": (2, "waiting")}
        if kind == "axis":
            strip = self._axis(ncols, step, width)
        elif kind in bands:
            band_key = key[1:]
            if band_key != self._band_key:
                self._band = self._bands.columns(step, first_column(t0, step), ncols,
                                                 own=self.show_own)
                self._band_key = band_key
            which, state = bands[str(kind)]
            strip = self._band_line(str(kind), state, self._band[which], width)
        elif kind == "frozen":
            frozen = self.model.frozen_columns(t0, t1, ncols, t1)
            any_frozen = any(frozen)
            label = Segment(
                "frozen".ljust(LABEL_W), self._style("frozen" if any_frozen else "axis")
            )
            segments = [label]
            for is_frozen, run in _runs(frozen):
                # Gaps get their own style: a gap merged into the glyphs' segment becomes one
                # SVG text run, which a renderer whose space and block widths differ stretches
                # off the grid (the frozen row drifted from the task rows in screenshots).
                if is_frozen:
                    segments.append(Segment(STATE_LOOK[State.FROZEN][0] * run,
                                            self._style("frozen")))
                else:
                    segments.append(Segment(" " * run, self._style("none")))
            strip = Strip(segments).crop_extend(0, width, None)
        elif info is not None:
            strip = self._task_line(info, ncols, t0, t1, width)
        else:
            strip = Strip.blank(width)
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
        # As wide as every other row's label, so the band's columns are the rows' columns.
        label = f"{name:<6}{fmt_count(current):>{LABEL_W - 8}}  "
        style, gap = self._style(state), self._style("none")
        segments = [Segment(label, self._style("label"))]
        start = 0  # gaps in a segment apart from the glyphs, as in the frozen row
        for busy, run in _runs([v > 0 for v in values]):
            chunk = values[start : start + run]
            start += run
            if busy:
                segments.append(Segment("".join(level_glyph(v / peak) for v in chunk), style))
            else:
                segments.append(Segment(" " * run, gap))
        return Strip(segments).crop_extend(0, width, None)

    def _task_line(self, info: TaskInfo, ncols: int, t0: float, t1: float, width: int) -> Strip:
        spans_key = (t0, t1, self.model.incidents_version)
        if spans_key != self._spans_key:  # once a frame for all its rows
            self._spans = self.model.frozen_spans(t0, t1, t1)
            self._spans_key = spans_key
        states = self.model.task_states(info, t0, t1, ncols, self._spans)
        alive = info.exit is None or info.exit >= t1
        label_style = self._style("label" if alive else "exited")
        segments = [Segment(trim(info.name, LABEL_W - 1).ljust(LABEL_W), label_style)]
        for state, run in _runs(states):
            glyph, look = STATE_LOOK[state]
            segments.append(Segment(glyph * run, self._style(look)))
        return Strip(segments).crop_extend(0, width, None)


def first_column(t0: float, step: float) -> int:
    """The absolute index of the window's first column (``t0`` sits on a column edge)."""
    return round(t0 / step)


def _runs(values: list[T]) -> list[tuple[T, int]]:
    """Consecutive equal values as (value, count): one Segment per run, not per cell."""
    out: list[tuple[T, int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out

