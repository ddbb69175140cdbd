"""Without a lock the shared counter loses updates; with one it is exact and the wait is real."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.model import Model
from cpviz.workloads import shared_state
from cpviz.workloads.registry import WorkloadError, catalogue, find


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(workloads=catalogue()) as running:
        yield running


# Why a loss is practically certain with these settings: every increment sleeps inside its
# read–write window, and time.sleep releases the GIL, so another thread that is waiting for it
# runs there and reads the same old value. A start gate makes all four threads contend from the
# first increment. On this machine runs like this lose about (n−1)/n of all updates; for a run
# to lose none, not one of 8000 windows may be entered by another thread. The async modes are
# deterministic: every coroutine reads, then all of them pass the await before any writes.
@pytest.mark.parametrize("mode", ["unlocked", "async-unlocked"])
def test_without_a_lock_updates_are_lost(lab: Lab, mode: str) -> None:
    run_id = lab.launch("shared-state", mode, {"threads": 4, "increments": 2000})
    result = lab.wait(run_id, timeout=60)
    assert result is not None and result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["expected"] == extra["planned"] == 8000
    assert extra["lost_updates"] > 0
    assert extra["final"] == extra["expected"] - extra["lost_updates"]
    assert "lock_wait_s" not in extra


@pytest.mark.parametrize("mode", ["locked", "async-locked"])
def test_a_lock_makes_the_counter_exact_and_its_wait_is_measured(lab: Lab, mode: str) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("shared-state", mode, {"threads": 4, "increments": 500})
    result = lab.wait(run_id, timeout=60)
    assert result is not None and result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["final"] == extra["expected"] == 2000
    assert extra["lost_updates"] == 0
    # Four workers share one lock held across a GIL release or an await: someone waited.
    assert extra["lock_wait_s"] > 0
    assert 0 < extra["lock_wait_pct"] <= 100
    model.apply(lab.stream.drain())
    series = model.metrics[run_id]
    assert {"counter", "expected so far", "lost so far", "lock wait s"} <= set(series)
    assert all(v == 0 for _t, v in series["lost so far"])


def _bumping_threads() -> list[int]:
    """Threads whose stack is inside the workload's increment loop right now."""
    code = shared_state._bump_in_thread.__code__
    out = []
    for ident, frame in sys._current_frames().items():
        f: FrameType | None = frame
        while f is not None:
            if f.f_code is code:
                out.append(ident)
                break
            f = f.f_back
    return out


def test_stopping_mid_run_leaves_no_thread_running(lab: Lab) -> None:
    before = {t.ident for t in threading.enumerate()}
    model = Model(lab.cores)
    run_id = lab.launch("shared-state", "locked", {"threads": 6, "increments": 10_000_000})
    for _ in range(400):
        model.apply(lab.stream.drain())
        if max((v for _t, v in model.metrics.get(run_id, {}).get("counter", ())), default=0):
            break
        threading.Event().wait(0.05)
    assert _bumping_threads(), "the threads should be incrementing by now"
    lab.stop_run(run_id)
    result = lab.wait(run_id, timeout=30)
    assert result is not None and result.outcome == "stopped"
    extra = dict(result.extra)
    assert 0 < extra["expected"] < extra["planned"]
    assert extra["final"] == extra["expected"]
    # The run ends only after its threads returned: none is still in the increment loop, and
    # any thread that was not there before is one of the lab's idle anyio workers.
    assert _bumping_threads() == []
    extra_threads = [t for t in threading.enumerate() if t.ident not in before]
    assert all(t.name == "AnyIO worker thread" for t in extra_threads)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threads": "1"}, "threads must be from 2 to 64, got 1"),
        ({"increments": "lots"}, "increments must be an integer from 1 to 10000000, got 'lots'"),
        ({"window_us": "-1"}, "window_us must be from 0.0 to 10000.0, got -1"),
    ],
)
def test_bad_settings_say_what_is_accepted(settings: dict[str, str], message: str) -> None:
    with pytest.raises(WorkloadError) as err:
        find("shared-state").resolve("unlocked", settings)
    assert message in str(err.value)
