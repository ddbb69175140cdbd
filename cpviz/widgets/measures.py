"""What a run measured about its work, on the timeline's own time axis.

Gauges the lab sampled (queue depth, unacked messages, latency percentiles) are drawn as one
sparkline row each, in the same columns as the timeline below, so a backlog lines up with the
tasks that caused it. Timed phases (a process pool's start-up) get a row of their own. Sweeps
(workers against throughput, or Amdahl's law) are not about time, so they are drawn as a table:
each measured figure per worker count, with the law's prediction beside it when the run gives
one. The widget hides itself when the run in focus has measured none of these.

Three of them are curves people would rather look at than read, so by default they are drawn
as a chart (``t`` shows the numbers as a table again): Amdahl's measured speedup against the
law's curve, oversubscription's throughput and context switches against workers, and a
server's p50 and p99 latency over time, on the timeline's columns.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Reversible
from functools import partial
from typing import Any, ClassVar

from rich.segment import Segment
from textual.strip import Strip

from cpviz.engine.events import Phase, SweepPoint
from cpviz.engine.model import Model, RunView
from cpviz.widgets._format import fmt_count, level_glyph, trim
from cpviz.widgets._line_view import LineView
from cpviz.widgets.chart import (
    MARKS,
    Row,
    Series,
    bar_width,
    curve_values,
    joined,
    plot,
    sweep_values,
    top_of,
    x_axis,
    x_columns,
)
from cpviz.widgets.run_panel import run_label
from cpviz.widgets.timeline import LABEL_W, snap_window

#: Most lines the widget takes by default (the timeline keeps the rest); the app asks for fewer
#: on short terminals.
MAX_LINES = 8
#: Result figures not worth a place on the result line (shown elsewhere already).
HIDDEN_EXTRA = frozenset({
    "max_loop_lag_s",
    # Facts about the run rather than its result: the interpreter and cpviz's own share, in
    # the JSON; the OS figures, on the runs panel's line under the result.
    "python", "gil", "observer_cpu_s", "simultaneous", "cpu_wait_s", "per_worker",
})
#: Cells per sweep column.
CELL = 7
#: Cells of the right-hand scale of a chart with two units.
RIGHT_W = 7
#: The gauges a server's latency chart draws, and how: p50 as bars, p99 as a line above them.
LATENCY = (("p50 ms", "bars", "gauge"), ("p99 ms", "line", "second"))


def lines_for(height: int, chart: bool) -> int:
    """Lines the view may take on a terminal ``height`` rows tall: a chart needs a few rows
    to show a shape, a table or a gauge reads in one."""
    if height < 32:
        return 1  # the timeline's rows come first; the chart is one key (t) from the numbers
    if height < 46:
        return 5 if chart else 4
    return 10 if chart else MAX_LINES


def amdahl_law(serial: float) -> Callable[[float], float]:
    """Amdahl's law for a serial fraction, at any worker count: the chart's reference curve."""
    return lambda n: 1.0 / (serial + (1.0 - serial) / max(n, 1e-9))


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
        "measures--second",
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
        & > .measures--second { color: $warning; }
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
        #: Draw sweeps and latency as a chart (True) or their numbers as a table (``t``).
        self.chart = True
        self._run: RunView | None = None
        self._lines: list[tuple[str, Any]] = []
        self._frame_key: tuple[object, ...] | None = None
        self._title = ""
        self._legend = ""
        self._chart_rows: tuple[tuple[object, ...], list[Row]] | None = None

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
               last, self.allowed, self.max_lines, self.chart)
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
        title = "" if run is None else (
            f"measured · {run_label(run.workload, run.mode, run.params)} (run {run.run_id})")
        if title != self._title:
            self._title = title
            self.border_title = title
        legend = self._chart_legend(run) if any(k == "chart" for k, _ in self._lines) else ""
        if legend != self._legend:
            self._legend = legend
            self.border_subtitle = legend
        if self.is_mounted:
            content_width, content_height = self._content_size()
            dirty: list[int] = []
            for y in range(content_height):
                line_key = self._line_key(y, content_width, last)
                self._update_line(y, line_key, partial(self._draw, y, content_width), dirty)
            self._refresh_lines(dirty)

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
        # A chart needs a few rows to show a shape; on a short screen the numbers read in one.
        chart = self._chart_kind(run) if self.chart and self.max_lines >= 3 else None
        if chart is not None:
            return self._chart_plan(run, chart)
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
        if kind in ("gauge", "phase", "chart"):
            return (kind, run_id, repr(what), self.model.measures_version, width,
                    self.window_s, last)
        return (kind, run_id, repr(what), self.model.measures_version, width)

    def render_line(self, y: int) -> Strip:
        width = self._content_size().width
        _, _, last, _, _ = self._frame(width)
        key = self._line_key(y, width, last)
        strip = self._take_built(y, key)
        return self._painted_line(y, key, self._draw(y, width) if strip is None else strip)

    # -- drawing --------------------------------------------------------------------------------

    def _draw(self, y: int, width: int) -> Strip:
        if y >= len(self._lines) or self._run is None:
            return Strip.blank(width)
        kind, what = self._lines[y]
        if kind == "chart":
            return self._chart_line(int(what), width)
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

    # -- charts ---------------------------------------------------------------------------------

    def _chart_kind(self, run: RunView) -> str | None:
        """Which chart the run's measures make, from what it measured (not from its name)."""
        points = self.model.sweeps.get(run.run_id, [])
        figures = {figure for p in points for figure, _ in p.figures}
        if "speedup" in figures:
            return "speedup"
        if "throughput" in figures:
            return "throughput"
        if any(name in self.model.metrics.get(run.run_id, {}) for name, _, _ in LATENCY):
            return "latency"
        return None

    def _chart_plan(self, run: RunView, kind: str) -> list[tuple[str, Any]]:
        """The chart's rows, and the run's verdict below them when there is room for both."""
        items = [] if run.result is None else [
            (k, v) for k, v in run.result.extra if k not in HIDDEN_EXTRA]
        most = max(2, self.max_lines)
        keep_result = bool(items) and most >= 5
        rows = most - (1 if keep_result else 0)
        lines: list[tuple[str, Any]] = [("chart", i) for i in range(rows)]
        if keep_result:
            lines.append(("result", items))
        return lines

    def _chart_legend(self, run: RunView | None) -> str:
        """What each glyph is, said under the chart; the law is said to be the theory."""
        if run is None:
            return ""
        kind = self._chart_kind(run)
        if kind == "speedup":
            serial = dict(run.params).get("serial")
            s = f", s={serial:g}" if isinstance(serial, int | float) else ""
            return f"█ measured speedup  ⠒⠒ Amdahl's law{s} (theory)  t: numbers"
        if kind == "throughput":
            return "█ throughput, jobs/s (left)  ⠒⠒ context switches/s (right)  t: numbers"
        if kind == "latency":
            return "█ p50  ⠒⠒ p99 latency, ms  t: numbers"
        return ""

    def _chart_line(self, y: int, width: int) -> Strip:
        rows = self._chart(width)
        row = rows[y] if y < len(rows) else []
        return Strip([Segment(text, self._style(look)) for text, look in row]
                     ).crop_extend(0, width, None)

    def _chart(self, width: int) -> list[Row]:
        """Every row of the chart, worked out once per change and shared by its lines."""
        run = self._run
        if run is None:
            return []
        height = sum(1 for kind, _ in self._lines if kind == "chart")
        last = self._frame(width)[2]
        kind = self._chart_kind(run)
        key = (run.run_id, kind, self.model.measures_version, width, height, self.window_s,
               last if kind == "latency" else 0)
        if self._chart_rows is not None and self._chart_rows[0] == key:
            return self._chart_rows[1]
        if kind == "latency":
            rows = self._latency_chart(run, width, height)
        elif kind is not None:
            rows = self._sweep_chart(run, kind, width, height)
        else:
            rows = []
        self._chart_rows = (key, rows)
        return rows

    def _label(self, text: str, value: str = "") -> tuple[str, str]:
        return (f"{trim(text, LABEL_W - 7):<{LABEL_W - 7}}{value:>6} ", "label")

    def _sweep_chart(self, run: RunView, kind: str, width: int, height: int) -> list[Row]:
        """Figures against workers: a plot, then the worker counts under their columns."""
        points = self.model.sweeps.get(run.run_id, [])
        params = dict(run.params)
        two = kind == "throughput"
        ncols = max(1, width - LABEL_W - (RIGHT_W if two else 0))
        xs = [p.x for p in points]
        most = params.get("max_workers")
        # The whole sweep's range from the start, so points fill in as they are measured.
        span = [1.0, *xs, *([float(most)] if isinstance(most, int | float) else [])]
        col, lo, hi = x_columns(span, ncols, log=kind == "throughput")
        wide = bar_width(span, col)

        def figure(name: str) -> list[tuple[float, float]]:
            return [(p.x, v) for p in points for f, v in p.figures if f == name]

        if kind == "speedup":
            serial = params.get("serial")
            law = (curve_values(amdahl_law(float(serial)), lo, hi, ncols)
                   if isinstance(serial, int | float) and 0 <= serial <= 1
                   else sweep_values(figure("law"), ncols, col))
            series = [Series("measured", "bars", "gauge",
                             sweep_values(figure("speedup"), ncols, col, wide)),
                      Series("law (theory)", "line", "law", law)]
            name = "speedup ×"
        else:
            series = [
                Series("jobs/s", "bars", "gauge",
                       sweep_values(figure("throughput"), ncols, col, wide)),
                Series("ctx sw/s", "line", "second",
                       joined(sweep_values(figure("ctx_switches_per_s"), ncols, col)), scale=1),
            ]
            name = "jobs/s"
        plot_rows = max(1, height - 1)
        tops = (top_of(series, 0), top_of(series, 1))
        body = plot(series, plot_rows, ncols, tops)
        out: list[Row] = []
        for i, cells in enumerate(body):
            if i == 0:
                label = self._label(name, fmt_value(tops[0]))
            elif i == plot_rows - 1:
                label = self._label("", "0")
            elif i <= len(series):
                s = series[i - 1]
                mark = MARKS[s.shape]
                room = LABEL_W - 1 - len(mark)
                label = (f"{mark} {trim(s.label, room - 1):<{room}}", s.look)
            else:
                label = self._label("")
            row: Row = [label, *cells]
            if two:
                right = fmt_value(tops[1]) if i == 0 else "0" if i == plot_rows - 1 else ""
                row.append((f" {right:<{RIGHT_W - 1}}", "second"))
            out.append(row)
        if height > 1:
            out.append([self._label("workers"), (x_axis(span, ncols, col), "label")])
        return out

    def _latency_chart(self, run: RunView, width: int, height: int) -> list[Row]:
        """p50 and p99 over time, in the timeline's columns: a spike lines up with its cause."""
        gauges = self.model.metrics.get(run.run_id, {})
        ncols, step, _, t0, _ = self._frame(width)
        series: list[Series] = []
        latest: list[float] = []
        for name, shape, look in LATENCY:
            readings = gauges.get(name)
            if readings is None:
                continue
            held: float | None = None
            values: list[float | None] = []
            for v in columns(readings, t0, step, ncols):
                # A gauge holds its reading until the next one: draw the level it was at.
                held = v if v is not None else held
                values.append(held)
            series.append(Series(name.split()[0], shape, look, tuple(values)))
            latest.append(readings[-1][1] if readings else float("nan"))
        tops = (top_of(series, 0), 1.0)
        body = plot(series, height, ncols, tops)
        out: list[Row] = []
        for i, cells in enumerate(body):
            if i == 0:
                label = self._label("latency ms", fmt_value(tops[0]))
            elif i == height - 1:
                label = self._label("", "0")
            elif i <= len(series):
                s = series[i - 1]
                mark = MARKS[s.shape]
                label = (f"{mark} {s.label:<{LABEL_W - 8 - len(mark)}}"
                         f"{fmt_value(latest[i - 1]):>6} ", s.look)
            else:
                label = self._label("")
            out.append([label, *cells])
        return out
