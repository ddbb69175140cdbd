"""The lab runs real workloads with every probe on; results are measured, not reported."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psutil
import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.events import RunResult
from cpviz.engine.headless import finish
from cpviz.engine.model import Model
from cpviz.workloads.registry import catalogue

#: The longest a run here may take before the test fails instead of hanging.
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(workloads=catalogue()) as running:
        yield running


def _run(lab: Lab, model: Model, key: str, mode: str, **settings: object) -> RunResult:
    run_id = lab.launch(key, mode, dict(settings))
    result = finish(lab, model, run_id, timeout=RUN_TIMEOUT_S)
    return result


def test_io_concurrent_overlaps_a_thousand_waits(lab: Lab) -> None:
    model = Model(lab.cores)
    # A second's latency: starting a thousand calls takes the loop a few milliseconds, or a
    # few hundred on a machine busy with other work; the waits overlap either way.
    result = _run(lab, model, "io", "concurrent", n=1000, latency_ms=1000)
    assert result.outcome == "completed"
    assert result.tasks >= 1000
    # Each call is a first step and a wake-up step at least.
    assert result.steps >= 2000
    run = next(r for r in model.runs.values() if r.result is result)
    assert run.end is not None
    _running, _ready, waiting = model.band(run.start, run.end, 50)
    # At some moment nearly all thousand tasks were waiting together: the waits overlapped.
    assert max(waiting) >= 900
    # Serial would be N × L = 1000 s; the concurrent run took a small fraction of that.
    assert result.speedup is not None and result.speedup > 10
    assert result.speedup_basis == "exact: N × L"


def test_io_bounded_never_has_more_than_k_calls_waiting(lab: Lab) -> None:
    model = Model(lab.cores)
    result = _run(lab, model, "io", "bounded", n=60, k=10, latency_ms=50)
    assert result.outcome == "completed"
    run = next(r for r in model.runs.values() if r.result is result)
    calls = [
        t for t in model.tasks.values() if t.run_id == run.run_id and t.name.startswith("call")
    ]
    assert len(calls) == 60
    # A call's last wait (between its last two steps) is the call itself; any earlier wait was
    # for the limiter. At no moment may more than k calls be waiting on the call itself.
    spans = []
    for t in calls:
        assert len(t.steps) >= 2
        spans.append((t.steps[-2][2], t.steps[-1][1]))
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    depth = peak = 0
    for _, d in edges:
        depth += d
        peak = max(peak, depth)
    assert peak <= 10


def test_cpu_loop_mode_freezes_the_loop_and_names_the_job(lab: Lab) -> None:
    model = Model(lab.cores)
    result = _run(lab, model, "cpu", "loop", jobs=1, work=4_000_000)
    assert result.outcome == "completed"
    assert len(result.incidents) >= 1
    incident = result.incidents[0]
    assert incident.file is not None and incident.file.endswith("_jobs.py")
    assert incident.function == "spin"
    assert incident.blocking_call == "CPU-bound Python code"


def test_blocking_sync_sleep_is_caught_and_offload_is_not(lab: Lab) -> None:
    model = Model(lab.cores)
    bad = _run(lab, model, "blocking", "sync-sleep", duration_s=1.2, period_ms=600, block_ms=250)
    good = _run(lab, model, "blocking", "offload", duration_s=1.2, period_ms=600, block_ms=250)
    assert bad.incidents, "time.sleep in a coroutine must raise the alarm"
    assert all(i.blocking_call == "time.sleep" for i in bad.incidents)
    assert all(i.function == "_waiter" and i.code == "time.sleep(block_s)" for i in bad.incidents)
    assert good.incidents == ()


def test_processes_run_in_worker_processes_and_stop_leaves_none(lab: Lab) -> None:
    model = Model(lab.cores)
    # fresh=false: the lab's shared pool, which stays up after the run (a fresh one would not).
    result = _run(lab, model, "cpu", "processes", jobs=2, work=200_000, fresh=False)
    assert result.outcome == "completed"
    assert lab.pool_pids(), "a processes run must have used worker processes"
    # Stopping a run mid-job tears the pool down: no worker keeps burning CPU.
    run_id = lab.launch("cpu", "processes", {"jobs": 4, "work": 100_000_000, "fresh": False})

    def handed_out() -> bool:
        # A job task's first step hands its job to a worker: from then on the stop is mid-job.
        model.apply(lab.stream.drain())
        return any(t.run_id == run_id and t.name.startswith("job") and t.nsteps
                   for t in model.tasks.values())

    while not handed_out():
        threading.Event().wait(0.05)
    workers = lab.pool_pids()
    lab.stop_run(run_id)
    stopped = lab.wait(run_id, timeout=30)
    assert stopped is not None and stopped.outcome == "stopped"
    _gone, alive = psutil.wait_procs(_processes(workers), timeout=5)
    assert alive == []


def _processes(pids: list[int]) -> list[psutil.Process]:
    """The ones still there; a worker may end between listing it and looking it up."""
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(psutil.Process(pid))
    return out


def test_a_closed_lab_leaves_no_thread_and_no_worker() -> None:
    before = {t.ident for t in threading.enumerate()}
    lab = Lab(workloads=catalogue())
    lab.start()
    run_id = lab.launch("cpu", "processes", {"jobs": 4, "work": 100_000_000})
    while not lab.pool_pids():
        threading.Event().wait(0.05)
    workers = _processes(lab.pool_pids())
    lab.close()
    assert lab.wait(run_id, timeout=5) is not None
    _, alive = psutil.wait_procs(workers, timeout=2)
    assert alive == []
    # Anything the lab started must be gone within 2 s of closing it.
    for thread in [t for t in threading.enumerate() if t.ident not in before]:
        thread.join(timeout=2)
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == []
