"""The Model folds events into per-column states and counts, by explicit rules."""

from __future__ import annotations

from cpviz.engine.events import (
    IncidentEnd,
    IncidentStart,
    RunEnd,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.model import Model, State


def _model() -> Model:
    model = Model(cores=2)
    model.apply(
        [
            RunStart(0.0, 1, "io", "concurrent", (), 1),
            TaskSpawn(0.0, 11, "call 0", 1, 0),
            # Column width is 0.1 s over [0, 1).
            TaskStep(11, 0.10, 0.1001, 0.1002),  # col 1: a wake-up, tiny wait, tiny run
            TaskStep(11, 0.30, 0.36, 0.37),  # col 3: waited 60 ms of 100 to run 10 ms
            TaskStep(11, 0.50, 0.50, 0.58),  # col 5: ran 80 ms of 100
            TaskStep(11, 0.70, 0.70, 0.701, final=True),  # col 7: last step, then gone
            TaskSpawn(0.0, 12, "call 1", 1, 0),
            RunEnd(0.9, 1, RunResult("io", "concurrent", (), 0.9, 0.1, 0.11, None, None, ())),
        ]
    )
    return model


def test_task_states_show_what_took_the_column() -> None:
    model = _model()
    states = model.task_states(model.tasks[11], 0.0, 1.0, 10)
    assert states == [
        State.WAITING,
        State.RAN,  # a microsecond wait is not "ready, not running"; the run was brief
        State.WAITING,
        State.READY,  # a wait one can see outranks a brief run
        State.WAITING,
        State.RUNNING,
        State.WAITING,
        State.RAN,
        State.NONE,  # exited
        State.NONE,
    ]


def test_band_counts_agree_with_the_rows() -> None:
    model = _model()
    running, ready, waiting = model.band(0.0, 1.0, 10)
    assert running == [0, 1, 0, 1, 0, 1, 0, 1, 0, 0]
    assert ready == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    # Task 12 never ran: it waits in every column; task 11 waits where it neither ran nor
    # was ready, until its exit.
    assert waiting == [2, 1, 2, 0, 2, 1, 2, 1, 1, 1]


def test_a_freeze_marks_live_tasks_frozen_and_counts_into_the_result() -> None:
    model = _model()
    model.apply([IncidentStart(0.2, 1, 0.2, None, None), IncidentEnd(0.45, 1, 0.25)])
    states = model.task_states(model.tasks[12], 0.0, 1.0, 10)
    assert states[2] == State.FROZEN and states[4] == State.FROZEN
    assert states[1] == State.WAITING and states[5] == State.WAITING
    # A task that has exited since still shows the freeze it lived through; a wait inside the
    # freeze is frozen, not "ready".
    gone = model.task_states(model.tasks[11], 0.0, 1.0, 10)
    assert gone[2] == State.FROZEN and gone[3] == State.FROZEN and gone[4] == State.FROZEN
    result = model.runs[1].result
    assert result is not None and result.tasks == 2 and result.steps == 4


def test_a_runs_steps_are_counted_even_for_tasks_whose_rows_were_pruned() -> None:
    """More tasks alive than the screen keeps rows for: the run's step count stays whole."""
    model = Model(cores=2, max_tasks=10)
    model.apply([RunStart(0.0, 1, "io", "concurrent", ())])
    model.apply([TaskSpawn(0.001 * i, 100 + i, f"call {i}", 1, 0) for i in range(50)])
    model.apply([TaskStep(100 + i, 0.1, 0.1, 0.11) for i in range(50)])
    model.apply([TaskStep(100 + i, 0.2, 0.2, 0.21, True) for i in range(50)])
    model.apply([RunEnd(0.3, 1, RunResult("io", "concurrent", (), 0.3, 0.0, 0.0, None, None, ()))])
    assert len(model.tasks) <= 10
    result = model.runs[1].result
    assert result is not None and result.tasks == 50 and result.steps == 100


def test_a_freeze_and_the_step_that_caused_it_fall_in_the_same_columns() -> None:
    """The frozen row and a task row map time to columns alike: the blocking step's columns
    are exactly the frozen row's, in any window that holds them."""
    model = Model(cores=2)
    model.apply([
        TaskSpawn(0.0, 11, "blocker", 0, 0),
        TaskStep(11, 0.52, 0.52, 0.78),  # the blocking step
        IncidentStart(0.62, 1, 0.52, None, None),
        IncidentEnd(0.80, 1, 0.26),
    ])
    for t0, t1, ncols in ((0.0, 1.0, 10), (0.03, 1.03, 97), (-4.0, 1.0, 102)):
        frozen = model.frozen_columns(t0, t1, ncols, t1)
        # Outside the step the task waits (or is not born yet); inside, it runs, or shows
        # frozen where the step covers only an edge of the column.
        states = model.task_states(model.tasks[11], t0, t1, ncols)
        ran = [s not in (State.WAITING, State.NONE) for s in states]
        assert any(frozen)
        assert frozen == ran, (t0, t1, ncols)


def test_rows_group_by_run_going_first_and_hide_cpvizs_own() -> None:
    from cpviz.widgets._task_rows import TaskRows

    model = Model(cores=2)
    model.apply([
        RunStart(0.0, 1, "cpu", "serial", (), 1),
        TaskSpawn(0.0, 1, "cpviz:dispatch", 0, 0),
        TaskSpawn(0.1, 10, "cpu:serial", 1, 0),
        TaskSpawn(0.2, 11, "cpviz.agent.lab._RunPool.warm_up.<locals>.one", 1, 10),
        RunEnd(0.5, 1, RunResult("cpu", "serial", (), 0.5, 0.5, 1.0, None, None, ())),
        RunStart(0.6, 2, "io", "concurrent", (), 1),
        TaskSpawn(0.6, 20, "io:concurrent", 2, 0),
        TaskSpawn(0.7, 21, "fetch", 2, 20),
    ])
    rows = TaskRows(model)
    assert [i.name for i in rows.rows(0.0, 1.0)] == ["io:concurrent", "fetch", "cpu:serial"]
    shown = [i.task_id for i in rows.rows(0.0, 1.0, own=True)]
    assert shown == [20, 21, 10, 11, 1]
    # Kept up from the journal: a new task joins its run's group; an exit leaves the window.
    model.apply([TaskSpawn(0.8, 22, "fetch", 2, 20), TaskStep(10, 0.9, 0.9, 0.95, final=True)])
    assert [i.task_id for i in rows.rows(0.0, 1.0)] == [20, 21, 22, 10]
    assert [i.task_id for i in rows.rows(1.0, 2.0)] == [20, 21, 22]
