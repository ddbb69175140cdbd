"""A small dot chart in character cells, for the sweeps and gauges a talk audience would rather
see as a curve than read as a table.

Drawn with the Line API's own pieces rather than a plotting widget: the measures view needs its
columns to be the timeline's columns (a latency curve must line up with the tasks below it),
and a chart must stay one line per row so that only changed lines repaint. A measured figure is
drawn as bars in eighth blocks, a second one (or a law's reference curve) as a dotted braille
line: the two differ in shape, not only in colour, so the chart reads in monochrome too.

Nothing here imports Textual: a chart is rows of ``(text, look)`` runs, and the view styles
each look with one of its component classes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cpviz.widgets._format import LEVELS

#: A chart row: runs of text, each with the name of the look it is drawn in.
Row = list[tuple[str, str]]


@dataclass(frozen=True)
class Series:
    """One curve: a value per column (None where nothing was measured there)."""

    #: What the legend calls it.
    label: str
    #: "bars" (eighth blocks, measured) or "line" (braille dots, joined column to column).
    #: A chart has at most one of each, so it reads in monochrome: solid bars, dotted line.
    shape: str
    #: The look (a component class suffix) it is drawn in.
    look: str
    #: One value per plot column.
    values: tuple[float | None, ...]
    #: 0 for the left scale, 1 for the right one (a second unit on the same workers).
    scale: int = 0


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ᵏ at or above ``value``: a scale's top that reads."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def top_of(series: Sequence[Series], scale: int) -> float:
    """The scale's top: a nice number above the largest value drawn on it."""
    peak = max((v for s in series if s.scale == scale for v in s.values if v is not None),
               default=0.0)
    return nice_top(peak)


#: Braille dot bits by [sub-column][dot row from the top].
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def _bar(value: float, top: float, rows: int) -> list[str]:
    """One column of a bar, top row first, in eighth blocks; anything above zero shows."""
    eighths = round(max(0.0, min(1.0, value / top)) * rows * 8)
    if value > 0:
        eighths = max(1, eighths)
    out = []
    for r in range(rows - 1, -1, -1):
        fill = max(0, min(8, eighths - 8 * r))
        out.append(LEVELS[fill - 1] if fill else " ")
    return out


def _line_dots(values: Sequence[float | None], top: float, rows: int,
               ncols: int) -> list[list[int]]:
    """Braille bits per cell for a line through ``values``, two dots wide per column and
    four high per row, with the rise between neighbouring dots filled so the line is whole."""
    bits = [[0] * ncols for _ in range(rows)]
    levels = rows * 4 - 1
    prev: int | None = None
    for c in range(min(ncols, len(values))):
        v = values[c]
        if v is None or not math.isfinite(v):
            prev = None
            continue
        here = round(max(0.0, min(1.0, v / top)) * levels)
        mid = here if prev is None else round((prev + here) / 2)
        start = here if prev is None else prev
        # Left dot: from the last level halfway up (or down); right dot: the rest of the way.
        for sub, (a, b) in enumerate(((start, mid), (mid, here))):
            for level in range(min(a, b), max(a, b) + 1):
                bits[rows - 1 - level // 4][c] |= _DOTS[sub][3 - level % 4]
        prev = here
    return bits


def plot(series: Sequence[Series], rows: int, ncols: int, tops: tuple[float, float]) -> list[Row]:
    """The plot area: ``rows`` rows of ``ncols`` cells.

    Bars are drawn first and a line only in cells the bars leave empty, so the line shows
    wherever it passes above a bar: a bar poking through the dots is a measurement that beat
    the line, a bar short of them one that fell below it.
    """
    cells: list[list[tuple[str, str]]] = [[(" ", "muted")] * ncols for _ in range(rows)]
    for s in series:
        if s.shape != "bars":
            continue
        for c, value in enumerate(s.values[:ncols]):
            if value is None or not math.isfinite(value):
                continue
            for r, glyph in enumerate(_bar(value, tops[s.scale], rows)):
                if glyph != " ":
                    cells[r][c] = (glyph, s.look)
    for s in series:
        if s.shape != "line":
            continue
        dots = _line_dots(s.values, tops[s.scale], rows, ncols)
        for r in range(rows):
            for c in range(ncols):
                if dots[r][c] and cells[r][c][0] == " ":
                    cells[r][c] = (chr(0x2800 + dots[r][c]), s.look)
    return [_runs(line) for line in cells]


def _runs(cells: list[tuple[str, str]]) -> Row:
    """Neighbouring cells of one look joined into one run of text."""
    out: Row = []
    for glyph, look in cells:
        if out and out[-1][1] == look:
            out[-1] = (out[-1][0] + glyph, look)
        else:
            out.append((glyph, look))
    return out


def joined(values: Sequence[float | None]) -> tuple[float | None, ...]:
    """Measured points joined straight from one to the next, for a line between them."""
    known = [(c, v) for c, v in enumerate(values) if v is not None]
    out: list[float | None] = list(values)
    for (c0, v0), (c1, v1) in itertools.pairwise(known):
        for c in range(c0 + 1, c1):
            out[c] = v0 + (v1 - v0) * (c - c0) / (c1 - c0)
    return tuple(out)


#: What each shape looks like in a legend.
MARKS = {"bars": "█", "line": "⠒⠒"}


def x_columns(xs: Sequence[float], ncols: int, log: bool = False
              ) -> tuple[Callable[[float], int], float, float]:
    """Where each worker count goes on a sweep's x axis, from its fewest to its most workers;
    ``log`` spaces doublings (1, 2, 4 … 64) evenly."""
    lo = min(xs, default=1.0)
    hi = max(xs, default=1.0)

    def scaled(x: float) -> float:
        return math.log2(max(x, 1e-9)) if log else x

    span = scaled(hi) - scaled(lo)

    def col(x: float) -> int:
        if span <= 0 or ncols <= 1:
            return 0
        return round((scaled(x) - scaled(lo)) / span * (ncols - 1))

    return col, lo, hi


def bar_width(xs: Sequence[float], col: Callable[[float], int]) -> int:
    """Three cells a bar where the worker counts lie far apart, one where they crowd."""
    cols = sorted({col(x) for x in xs})
    gap = min((b - a for a, b in itertools.pairwise(cols)), default=99)
    return 3 if gap >= 6 else 1


def sweep_values(points: Sequence[tuple[float, float]], ncols: int,
                 col: Callable[[float], int], width: int = 1) -> tuple[float | None, ...]:
    """A measured figure at its workers' columns only (``width`` cells centred on each):
    between them nothing was measured."""
    out: list[float | None] = [None] * ncols
    for x, y in points:
        c = col(x)
        for at in range(c - width // 2, c - width // 2 + width):
            if 0 <= at < ncols:
                out[at] = y
    return tuple(out)


def curve_values(fn: Callable[[float], float], lo: float, hi: float,
                 ncols: int) -> tuple[float | None, ...]:
    """A reference curve (a law, not a measurement) evaluated at every column."""
    if ncols <= 1 or hi <= lo:
        return tuple(fn(lo) for _ in range(ncols))
    return tuple(fn(lo + (hi - lo) * c / (ncols - 1)) for c in range(ncols))


def x_axis(xs: Sequence[float], ncols: int, col: Callable[[float], int]) -> str:
    """The worker counts written under their columns, each where it fits without overlapping."""
    line = [" "] * ncols
    free_from = 0
    for x in sorted(set(xs)):
        text = f"{x:g}"
        c = col(x)
        at = min(max(c - len(text) // 2, free_from), ncols - len(text))
        if at < free_from or at < 0:
            continue
        line[at:at + len(text)] = list(text)
        free_from = at + len(text) + 1
    return "".join(line)
