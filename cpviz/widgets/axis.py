"""The one time axis every row is drawn on: core lanes, band, frozen row, tasks, threads.

Each view asks :func:`snap_window` (or :class:`Axis`) with the same content width, window and
display time, so a moment lands in the same screen column in all of them, live, paused and in a
replay. Nothing here imports Textual: the mapping is plain arithmetic, tested without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Cells given to a row's label before its columns, in every view on the axis.
LABEL_W = 18


def snap_window(width: int, window_s: float, now: float) -> tuple[int, float, int, float, float]:
    """Columns, seconds per column, index of the last column, and the window's ends.

    The window is snapped to whole columns of absolute time, so a strip drawn for column
    ``last`` stays right until the clock reaches the next column. Every view on the axis uses
    this with the same ``width`` (the timeline's content width), so their columns line up.
    """
    ncols = max(1, width - LABEL_W)
    step = window_s / ncols
    last = math.floor(now / step)
    t1 = (last + 1) * step
    return ncols, step, last, t1 - window_s, t1


@dataclass(frozen=True, slots=True)
class Axis:
    """One frame's column mapping, as :func:`snap_window` works it out."""

    #: Time columns across the width (after the label).
    ncols: int
    #: Seconds each column spans.
    step: float
    #: Absolute index of the rightmost column: ``floor(t * (1 / step))`` of the times in it
    #: (the model's queries count columns so too).
    last: int
    #: The window's left and right ends; columns are [t0 + i*step, t0 + (i+1)*step).
    t0: float
    t1: float

    @classmethod
    def of(cls, width: int, window_s: float, now: float) -> Axis:
        return cls(*snap_window(width, window_s, now))

    @property
    def first(self) -> int:
        """Absolute index of the leftmost column."""
        return self.last - self.ncols + 1

    def column(self, t: float) -> int | None:
        """The column (0 = leftmost) time ``t`` falls in, or None outside the window.

        Absolute column indices, not ``(t - t0) / step``: float error in t0 must not move an
        event that sits on a column edge into its neighbour in one view and not another.
        """
        c = math.floor(t * (1.0 / self.step)) - self.first
        return c if 0 <= c < self.ncols else None

    def x(self, t: float) -> int | None:
        """The cell, counted from the row's left edge (label included), of time ``t``."""
        c = self.column(t)
        return None if c is None else LABEL_W + c
