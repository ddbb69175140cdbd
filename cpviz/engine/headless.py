"""Run to the end without a screen: the one loop ``cpviz run``, ``cpviz bench``, the benches and
the tests use to wait for a run's result, always with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from cpviz.engine.errors import CpvizError
from cpviz.engine.events import RunResult
from cpviz.engine.model import Model
from cpviz.engine.stream import EventStream


class RunTimeout(CpvizError):
    """A run did not end by its deadline; it was asked to stop."""


class HeadlessLab(Protocol):
    """What waiting on a run needs: the stream to drain and a way to stop the run."""

    stream: EventStream

    def stop_run(self, run_id: int) -> None: ...


def result_of(model: Model, run_id: int) -> dict[str, Any] | None:
    """A finished run's JSON shape (``cpviz run --json``), with a sweep's points, or None."""
    view = model.runs.get(run_id)
    if view is None or view.result is None:
        return None
    out = dict(view.result.as_dict())
    points = model.sweeps.get(run_id, [])
    if points:
        # What a sweep measured at each worker count, with any law beside it.
        out["sweep"] = [{"x": p.x, **dict(p.figures)} for p in points]
    return out


def finish(
    lab: HeadlessLab,
    model: Model,
    run_id: int,
    *,
    timeout: float | None = 600.0,
    on_progress: Callable[[int, int], None] | None = None,
    poll_s: float = 0.05,
    stop: bool = True,
) -> RunResult:
    """Fold the lab's events into ``model`` until run ``run_id`` ends; its result.

    Raises RunTimeout when ``timeout`` passes first, after asking the lab to stop the run
    (unless ``stop`` is False: the caller decides what an overdue run gets).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        model.apply(lab.stream.drain())
        view = model.runs.get(run_id)
        if view is not None and on_progress is not None:
            on_progress(view.done, view.total)
        if view is not None and view.result is not None:
            return view.result
        if deadline is not None and time.monotonic() > deadline:
            if stop:
                lab.stop_run(run_id)
            raise RunTimeout(f"run {run_id} did not end within {timeout:g} s; it was stopped")
        time.sleep(poll_s)


def run_to_end(
    lab: HeadlessLab,
    model: Model,
    run_id: int,
    *,
    timeout: float | None = 600.0,
    on_progress: Callable[[int, int], None] | None = None,
    poll_s: float = 0.05,
) -> dict[str, Any]:
    """:func:`finish`, as the JSON shape ``cpviz run --json`` prints."""
    finish(lab, model, run_id, timeout=timeout, on_progress=on_progress, poll_s=poll_s)
    result = result_of(model, run_id)
    assert result is not None
    return result
