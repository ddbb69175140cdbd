"""Memory bounded by design: what the Model, the gauges and the pipeline keep follows the window
on screen, not how long cpviz has run; and drawing a frame costs what is on screen."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator

from cpviz.engine import model as model_module
from cpviz.engine.events import (
    CoreSample,
    Metric,
    Phase,
    RunStart,
    SweepPoint,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.model import (
    MAX_POINTS,
    MAX_SAMPLES,
    MAX_SERIES,
    MAX_STEPS,
    MAX_TRACKED,
    SERIES_LEN,
    Model,
)
from cpviz.widgets.measures import columns
from cpviz.workloads.pipeline import _Books


class _Counted(deque[tuple[float, float]]):
    """A gauge series that counts the readings a drawing looks at."""

    looked = 0

    def __reversed__(self) -> Iterator[tuple[float, float]]:
        for item in super().__reversed__():
            self.looked += 1
            yield item


def test_drawing_a_gauge_reads_the_window_not_the_whole_series() -> None:
    # The screen's CPU doubled over the first minutes of a pipeline run as 20 Hz gauges filled
    # their 4096 readings, every one of them read again on each of 25 frames a second.
    series = _Counted(((i * 0.02, float(i % 7)) for i in range(SERIES_LEN)), maxlen=SERIES_LEN)
    now = SERIES_LEN * 0.02
    cols = columns(series, now - 5.0, 5.0 / 100, 100)
    assert series.looked <= 5.0 / 0.02 + 2  # the readings in the last 5 s, and one before
    assert all(c is not None for c in cols)


def test_a_reading_that_is_not_a_number_is_a_gap() -> None:
    cols = columns(deque([(0.0, 1.0), (1.0, float("nan")), (2.0, float("inf"))]), 0.0, 1.0, 3)
    assert cols == [1.0, None, None]


def test_the_model_keeps_at_most_its_caps_however_long_it_runs() -> None:
    model = Model(cores=2)
    model.apply([RunStart(0.0, 1, "pipeline", "steady", ())])
    for _ in range(MAX_SAMPLES * 2):  # all at one moment: the time horizon alone would keep all
        model.apply([CoreSample(1.0, (10.0, 20.0))])
    assert len(model.samples) == len(model._dominant) == MAX_SAMPLES
    model.apply(Metric(1.0, 1, f"gauge {i}", 1.0) for i in range(MAX_SERIES * 3))
    assert len(model.metrics[1]) == MAX_SERIES
    model.apply(SweepPoint(1.0, 1, float(i), ()) for i in range(MAX_POINTS + 50))
    model.apply(Phase(1.0, 1, "p", 0.5) for _ in range(MAX_POINTS + 50))
    assert len(model.sweeps[1]) == MAX_POINTS and len(model.phases[1]) == MAX_POINTS
    # Figures of runs whose start never came are not kept without end either.
    model.apply(Metric(1.0, run_id, "depth", 1.0) for run_id in range(1000, 1500))
    assert len(model.metrics) <= 2 * model_module.MAX_RUNS


def test_steps_across_all_tasks_are_capped() -> None:
    model = Model(cores=2)
    tasks = 2000
    model.apply(TaskSpawn(0.0, i, f"t{i}", 0, 0) for i in range(tasks))
    per_task = 2 * MAX_STEPS // tasks  # twice the budget, if every step were kept
    for i in range(tasks):
        model.apply(TaskStep(i, k * 1e-3, k * 1e-3, k * 1e-3 + 1e-4) for k in range(per_task))
    assert sum(len(t.steps) for t in model.tasks.values()) <= MAX_STEPS
    latest = model.tasks[0].steps[-1]
    assert latest[2] == (per_task - 1) * 1e-3 + 1e-4  # the newest steps are the ones kept


def test_tasks_that_never_finish_are_not_followed_without_end() -> None:
    model = Model(cores=2)
    model.apply(TaskSpawn(0.0, i, "t", 1, 0) for i in range(MAX_TRACKED + 5000))
    assert len(model._task_run) == MAX_TRACKED


def test_the_pipelines_books_hold_a_window_not_every_message() -> None:
    # A million messages used to peak at 516 MB: a log of every commit and every finish.
    books = _Books()
    rng = random.Random(1)
    largest = 0
    for first in range(0, 100_000, 8):  # eight in flight at a time, finishing in any order
        block = list(range(first, first + 8))
        for offset in block:
            books.created = offset + 1
            books.take(offset)
        rng.shuffle(block)
        for offset in block:
            books.finish(offset)
            held = sum(len(v) for v in vars(books).values() if isinstance(v, (set, list, dict)))
            largest = max(largest, held)
    assert books.committed == 100_000 and books.acks_in_order()
    assert largest <= 8
    assert books.duplicates == 0 and books.out_of_order > 0


def test_the_books_notice_a_commit_out_of_order() -> None:
    books = _Books()
    books.take(0)
    books.finish(0)
    books._commit(5)  # not the next offset, and never processed
    assert not books.acks_in_order()
