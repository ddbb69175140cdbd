"""One axis: a known moment falls in the same column in every view's data, at every zoom."""

from __future__ import annotations

import pytest

from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.model import BandWindow, CoreWindow, Model, State
from cpviz.engine.source import event_time
from cpviz.widgets.axis import LABEL_W, Axis, snap_window
from cpviz.widgets.core_lanes import fold, lane_name

WIDTH = 158  # the timeline's content width at 160 columns
NOW = 100.0
CULPRIT = Frame("app.py", 3, "main", "time.sleep(1)")


def _scene(burst: float, span: float) -> Model:
    """Idle cores but one burst on core 1; a task that runs only then; a freeze then."""
    model = Model(cores=4)
    events: list[object] = [TaskSpawn(1.0, 7, "worker", 1, 0)]
    t = 0.1
    while t <= NOW + 1e-9:
        busy = burst < t <= burst + span + 1e-9
        events.append(CoreSample(round(t, 6), (1.0, 100.0 if busy else 1.0, 1.0, 1.0)))
        t += 0.1
    events += [
        TaskStep(7, burst, burst, burst + span),
        IncidentStart(burst + 0.05, 1, burst, CULPRIT, None, (CULPRIT,), 7),
        IncidentEnd(burst + span, 1, span),
    ]
    events.sort(key=event_time)  # type: ignore[arg-type]
    model.apply(events)  # type: ignore[arg-type]
    return model


@pytest.mark.parametrize("window_s", [5.0, 20.0, 60.0])
def test_a_burst_a_step_and_a_freeze_fall_in_the_same_columns_everywhere(window_s: float) -> None:
    axis = Axis.of(WIDTH, window_s, NOW)
    assert (axis.ncols, axis.step, axis.last, axis.t0, axis.t1) == snap_window(WIDTH, window_s,
                                                                              NOW)
    # The burst spans whole sample intervals and several columns, from a column's middle.
    span = max(1.0, 3 * axis.step)
    burst = round((axis.first + axis.ncols // 2 + 0.5) * axis.step, 1)
    model = _scene(burst, span)
    # Columns wholly inside the burst.
    want = {c for c in range(axis.ncols)
            if burst <= (axis.first + c) * axis.step
            and (axis.first + c + 1) * axis.step <= burst + span}
    assert want

    lanes = CoreWindow(model).lanes(axis.step, axis.first, axis.ncols, 1, until=axis.t1)
    busy_cores = {c for c, cell in enumerate(lanes[1]) if cell.pct is not None and cell.pct > 50}
    task = model.task_states(model.tasks[7], axis.t0, axis.t1, axis.ncols)
    running = {c for c, s in enumerate(task) if s == State.RUNNING}
    frozen = {c for c, f in enumerate(model.frozen_columns(axis.t0, axis.t1, axis.ncols, NOW))
              if f}
    ran = {c for c, n in enumerate(BandWindow(model).columns(axis.step, axis.first,
                                                             axis.ncols)[0]) if n}
    # Whole columns inside the burst agree in every view; edges may differ by part of a column.
    for view in (busy_cores, running, frozen, ran):
        assert want <= view, (sorted(want), sorted(view))
        assert view <= {c for w in want for c in (w - 1, w, w + 1)}
    assert axis.column(burst + span / 2) in want
    assert axis.x(burst + span / 2) == LABEL_W + axis.column(burst + span / 2)  # type: ignore


def test_a_column_is_the_mean_of_the_samples_over_its_span() -> None:
    model = Model(cores=1)
    model.apply([CoreSample(round(0.1 * k, 6), (100.0 if k % 2 else 0.0,)) for k in range(1, 601)])
    axis = Axis.of(18 + 60, 60.0, 60.0)  # one second a column
    cells = CoreWindow(model).lanes(axis.step, axis.first, axis.ncols, until=axis.t1)[0]
    means = [c.pct for c in cells if c.pct is not None]
    assert len(means) >= 55
    assert all(abs(m - 50.0) < 10.1 for m in means)


def test_the_band_kept_from_the_journal_counts_as_the_model_does() -> None:
    model = Model(cores=2)
    window = BandWindow(model)
    events: list[Event] = []
    for i in range(30):
        events.append(TaskSpawn(0.1 * i, 100 + i, f"t{i}", 1, 0))
        for k in range(5):
            ready = 0.1 * i + 0.37 * k
            events.append(TaskStep(100 + i, ready, ready + 0.02 * (i % 4), ready + 0.05,
                                   final=k == 4 and i % 3 == 0))
    events.sort(key=event_time)
    for now in (1.0, 2.0, 3.0, 4.5):
        model.apply([e for e in events if now - 1.0 < event_time(e) <= now])
        axis = Axis.of(18 + 50, 2.0, now)
        kept = window.columns(axis.step, axis.first, axis.ncols)
        fresh = BandWindow(model).columns(axis.step, axis.first, axis.ncols)
        assert kept == fresh
        assert kept[0] == model.band(axis.t0, axis.t1, axis.ncols)[0]


def test_many_cores_fold_into_lanes_that_fit() -> None:
    assert fold(2, 8) == (1, 4)
    assert fold(2, 2) == (1, 1)
    assert fold(8, 4) == (2, 1)
    assert fold(64, 8) == (8, 1)
    assert lane_name(1, 8, 64) == "cpu8-15"
    assert lane_name(3, 1, 4) == "cpu3"
    assert lane_name(2, 3, 7) == "cpu6"
