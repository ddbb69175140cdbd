"""What a run measured about its work, on the timeline's own time axis.

Gauges the lab sampled (queue depth, unacked messages, latency percentiles) are drawn as one
sparkline row each, in the same columns as the timeline below, so a backlog lines up with the
tasks that caused it. Timed phases (a process pool's start-up) get a row of their own. Sweeps
(workers against throughput, or Amdahl's law) are not about time, so they are drawn as a table:
each measured figure per worker count, with the law's prediction beside it when the run gives
one. The widget hides itself when the run in focus has measured none of these.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Reversible
from functools import partial
from typing import Any, ClassVar

from rich.segment import Segment
from textual.strip import Strip

from cpviz.engine.events import Phase, SweepPoint
from cpviz.engine.model import Model, RunView
from cpviz.widgets._format import fmt_count, level_glyph, trim
from cpviz.widgets._line_view import LineView
from cpviz.widgets.timeline import LABEL_W, snap_window

#: Most lines the widget takes by default (the timeline keeps the rest); the app asks for fewer
#: on short terminals.
MAX_LINES = 8
#: Result figures not worth a place on the result line (shown elsewhere already).
HIDDEN_EXTRA = frozenset({"max_loop_lag_s"})
#: Cells per sweep column.
CELL = 7


def fmt_value(value: float) -> str:
    """A gauge or figure in at most six cells."""
    if value != value:  # NaN: nothing measured yet
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if abs(value) >= 1000:
        return fmt_count(value)
    if value == int(value):
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_extra(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_value(value)
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


def columns(series: Reversible[tuple[float, float]], t0: float, step: float, ncols: int
            ) -> list[float | None]:
    """The latest reading in each column of [t0, t0 + ncols·step), None where none fell or
    the reading was not a number.

    Read from the newest reading back to the window's start and no further: a frame costs
    what is on screen, not how long the gauge has been sampled (a series once held 4096
    readings, and redrawing all of them 25 times a second made the screen's CPU double as a
    run went on).
    """
    out: list[float | None] = [None] * ncols
    for t, value in reversed(series):
        if t < t0:
            break
        col = math.floor((t - t0) / step)
        if col < ncols and out[col] is None and math.isfinite(value):
            out[col] = value
    return out


class Measures(LineView):
    """Gauges, phases and sweeps of the run in focus; hidden when there are none."""

    COMPONENT_PREFIX = "measures"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "measures--label",
        "measures--gauge",
        "measures--phase",
        "measures--law",
        "measures--muted",
    }

    DEFAULT_CSS = """
    Measures {
        height: 3;
        overflow: hidden hidden;
        & > .measures--label { color: $text; }
        & > .measures--gauge { color: $accent; }
        & > .measures--phase { color: $warning; }
        & > .measures--law { color: $text-muted; text-style: italic; }
        & > .measures--muted { color: $text-muted; }
    }
    """

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self.now = 0.0
        self.window_s = 5.0
        #: Workload whose latest run is in focus (the selected one), or None for any.
        self.focus_key: str | None = None
        self.axis_width: int | None = None
        #: False keeps the view hidden whatever the run measured (a talk scene without it).
        self.allowed = True
        #: Lines it may take; the app lowers it on short terminals so the timeline keeps rows.
        self.max_lines = MAX_LINES
        self._run: RunView | None = None
        self._lines: list[tuple[str, Any]] = []
        self._frame_key: tuple[object, ...] | None = None
        self._title = ""

    def show(
        self, now: float, window_s: float, focus_key: str | None, axis_width: int | None = None
    ) -> None:
        """Take a frame's display time, window and focus; repaint only lines that changed.

        ``axis_width`` is the timeline's content width: with it, the columns here are the
        timeline's columns even when one of the two has a scrollbar and the other has not.
        """
        self.now, self.window_s, self.focus_key = now, window_s, focus_key
        self.axis_width = axis_width
        model = self.model
        width = self._content_size().width
        last = self._frame(width)[2]
        key = (focus_key, model.measures_version, model.runs_version, width, axis_width, window_s,
               last, self.allowed, self.max_lines)
        if key == self._frame_key:
            return
        self._frame_key = key
        self._run = self._focus_run()
        self._lines = self._plan(self._run) if self.allowed else []
        # Each of these relayouts the screen when assigned, even to the same value.
        if self.display != bool(self._lines):
            self.display = bool(self._lines)
        height = min(self.max_lines, len(self._lines)) + 2  # the border
        if self._lines and (self.styles.height is None or self.styles.height.value != height):
            self.styles.height = height
        run = self._run
        title = "" if run is None else f"measured · {run.workload}:{run.mode} (run {run.run_id})"
        if title != self._title:
            self._title = title
            self.border_title = title
        if self.is_mounted:
            content_width, content_height = self._content_size()
            for y in range(content_height):
                line_key = self._line_key(y, content_width, last)
                self._update_line(y, line_key, partial(self._draw, y, content_width))

    def _focus_run(self) -> RunView | None:
        """The latest run of the focused workload that measured something, else the latest one."""
        model = self.model
        runs = sorted(model.runs.values(), key=lambda r: r.run_id, reverse=True)
        for run in runs:
            if self.focus_key is not None and run.workload != self.focus_key:
                continue
            if self._measured(run):
                return run
        return None

    def _measured(self, run: RunView) -> bool:
        model = self.model
        rid = run.run_id
        extra = run.result is not None and any(
            k not in HIDDEN_EXTRA for k, _ in run.result.extra
        )
        return bool(model.metrics.get(rid) or model.sweeps.get(rid) or model.phases.get(rid)
                    or extra)

    def _plan(self, run: RunView | None) -> list[tuple[str, Any]]:
        """The lines to draw, as (kind, what): gauges first, then phases, sweep, result."""
        if run is None:
            return []
        model = self.model
        lines: list[tuple[str, Any]] = []
        for name in model.metrics.get(run.run_id, {}):
            lines.append(("gauge", name))
        phase_names = dict.fromkeys(p.name for p in model.phases.get(run.run_id, []))
        lines.extend(("phase", name) for name in phase_names)
        points = model.sweeps.get(run.run_id, [])
        if points:
            figures = dict.fromkeys(figure for p in points for figure, _ in p.figures)
            lines.append(("sweep-x", None))
            lines.extend(("sweep", figure) for figure in figures)
        if run.result is not None:
            items = [(k, v) for k, v in run.result.extra if k not in HIDDEN_EXTRA]
            if items:
                lines.append(("result", items))
        most = self.max_lines
        if len(lines) > most:
            # Keep the result line: it is the run's verdict.
            lines = lines[: most - 1] + lines[-1:] if lines[-1][0] == "result" and most > 1 \
                else lines[:most]
        return lines

    # -- geometry (the timeline's, so columns line up) -------------------------------------------

    def _frame(self, width: int) -> tuple[int, float, int, float, float]:
        return snap_window(min(width, self.axis_width or width), self.window_s, self.now)

    def _line_key(self, y: int, width: int, last: int) -> tuple[object, ...]:
        if y >= len(self._lines):
            return ("blank", width)
        kind, what = self._lines[y]
        run_id = self._run.run_id if self._run is not None else 0
        if kind in ("gauge", "phase"):
            return (kind, run_id, repr(what), self.model.measures_version, width,
                    self.window_s, last)
        return (kind, run_id, repr(what), self.model.measures_version, width)

    def render_line(self, y: int) -> Strip:
        width = self._content_size().width
        _, _, last, _, _ = self._frame(width)
        return self._painted_line(y, self._line_key(y, width, last), self._draw(y, width))

    # -- drawing --------------------------------------------------------------------------------

    def _draw(self, y: int, width: int) -> Strip:
        if y >= len(self._lines) or self._run is None:
            return Strip.blank(width)
        kind, what = self._lines[y]
        if kind == "gauge":
            return self._gauge(str(what), width)
        if kind == "phase":
            phases = [p for p in self.model.phases.get(self._run.run_id, []) if p.name == what]
            return self._phase(phases, width)
        points = self.model.sweeps.get(self._run.run_id, [])
        if kind == "sweep-x":
            return self._sweep_row("workers", [fmt_value(p.x) for p in points], "label", width)
        if kind == "sweep":
            return self._sweep_figure(str(what), points, width)
        items = ", ".join(f"{k.replace('_', ' ')} {fmt_extra(v)}" for k, v in what)
        return Strip([Segment(trim("result: " + items, width), self._style("label"))]
                     ).crop_extend(0, width, None)

    def _gauge(self, name: str, width: int) -> Strip:
        assert self._run is not None
        series: deque[tuple[float, float]] = self.model.metrics[self._run.run_id][name]
        ncols, step, _, t0, _ = self._frame(width)
        cols = columns(series, t0, step, ncols)
        shown = [v for v in cols if v is not None]
        peak = max((abs(v) for v in shown), default=0.0)
        latest = series[-1][1] if series else float("nan")
        label = f"{trim(name, LABEL_W - 7):<{LABEL_W - 7}}{fmt_value(latest):>6} "
        cells = []
        held: float | None = None
        for v in cols:
            # A gauge holds its reading until the next one: draw the level it was at.
            held = v if v is not None else held
            if held is None:
                cells.append(" ")
            elif peak <= 0 or held <= 0:
                cells.append("▁" if held is not None and held <= 0 and peak > 0 else " ")
            else:
                cells.append(level_glyph(held / peak))
        return Strip([Segment(label, self._style("label")),
                      Segment("".join(cells), self._style("gauge"))]).crop_extend(0, width, None)

    def _phase(self, phases: list[Phase], width: int) -> Strip:
        """Every stretch of one named phase on the time axis; the label gives the latest."""
        ncols, step, _, t0, _ = self._frame(width)
        last = phases[-1]
        took = fmt_value(last.t - last.start)
        label = f"{trim(last.name, LABEL_W - 8):<{LABEL_W - 8}}{took:>6}s "
        cells = [" "] * ncols
        end_col = -1
        for phase in phases:
            if phase.t < t0:
                continue
            a = max(0, math.floor((phase.start - t0) / step))
            b = min(ncols, max(a + 1, math.ceil((phase.t - t0) / step)))
            for c in range(a, b):
                cells[c] = "━"
            end_col = max(end_col, b)
        text = "".join(cells)
        note = f" {last.detail}" + (f" ({len(phases)}×)" if len(phases) > 1 else "")
        if last.detail and end_col >= 0 and end_col + len(note) <= ncols:
            text = text[:end_col] + note + text[end_col + len(note):]
        return Strip([Segment(label, self._style("label")),
                      Segment(text, self._style("phase"))]).crop_extend(0, width, None)

    def _sweep_row(self, name: str, cells: list[str], look: str, width: int) -> Strip:
        body = "".join(f"{c:>{CELL}}" for c in cells)
        return Strip([Segment(f"{trim(name, LABEL_W - 1):<{LABEL_W}}", self._style("label")),
                      Segment(body, self._style(look))]).crop_extend(0, width, None)

    def _sweep_figure(self, figure: str, points: list[SweepPoint], width: int) -> Strip:
        values = [dict(p.figures).get(figure) for p in points]
        cells = ["" if v is None else fmt_value(v) for v in values]
        look = "law" if figure in ("law", "predicted") or figure.endswith("law") else "gauge"
        return self._sweep_row(figure.replace("_", " "), cells, look, width)
