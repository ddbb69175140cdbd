"""The core lanes keep final columns from frame to frame: the picture must equal a fresh fold."""

from __future__ import annotations

import random

from cpviz.engine.events import CoreSample
from cpviz.engine.model import CoreWindow, Model
from cpviz.widgets.axis import Axis
from cpviz.widgets.core_lanes import _heights, _LaneColumns

WIDTH = 118
CORES = 3


def _fresh(model: Model, axis: Axis, group: int, per_lane: int) -> list[tuple[str, list[object]]]:
    lanes = CoreWindow(model).lanes(axis.step, axis.first, axis.ncols, group, until=axis.t1)
    return [(_heights(columns, per_lane), [c.role for c in columns]) for columns in lanes]


def _newest(model: Model, axis: Axis) -> float | None:
    return next((s.t for s in reversed(model.samples) if s.t <= axis.t1), None)


def test_kept_columns_equal_a_fresh_fold_as_samples_arrive_late_and_the_view_moves() -> None:
    rng = random.Random(7)
    model = Model(cores=CORES)
    kept = _LaneColumns(CoreWindow(model))
    t_sample = 0.0
    now = 1.0
    for frame in range(400):
        now += rng.choice((0.013, 0.04, 0.04, 0.1, 0.27))
        # The sampler reports about ten times a second, a little behind the display time.
        while t_sample + 0.1 <= now - rng.random() * 0.15:
            t_sample = round(t_sample + rng.uniform(0.08, 0.12), 6)
            model.apply([CoreSample(t_sample, tuple(rng.random() * 100 for _ in range(CORES)))])
        if frame == 250:
            now -= 1.5  # a step back in time (paused, scrubbing)
        window_s, group, per_lane = (5.0, 1, 2) if frame < 300 else (2.0, 2, 1)
        axis = Axis.of(WIDTH, window_s, now)
        newest = _newest(model, axis)
        got = kept.window(axis, group, per_lane, newest, (CORES, id(model.samples)))
        assert got == _fresh(model, axis, group, per_lane), frame
