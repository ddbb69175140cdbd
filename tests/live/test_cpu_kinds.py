"""CPU job kinds (C5, C6) and measured worker start-up (C7)."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import traceback
from collections.abc import Iterator

import psutil
import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.events import Phase, RunResult
from cpviz.engine.headless import finish
from cpviz.engine.model import Model
from cpviz.workloads import _jobs
from cpviz.workloads.cpu import START_METHODS, ThreadCrew
from cpviz.workloads.registry import WorkloadError, catalogue, find

#: The longest a run here may take before the test fails instead of hanging.
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(workloads=catalogue()) as running:
        yield running


def _run(lab: Lab, model: Model, mode: str, **settings: object) -> tuple[int, RunResult]:
    run_id = lab.launch("cpu", mode, dict(settings))
    result = finish(lab, model, run_id, timeout=RUN_TIMEOUT_S)
    return run_id, result


def _crew_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cpviz worker")]


# -- parameters ---------------------------------------------------------------------------------


def test_kind_is_a_choice_that_says_what_it_accepts() -> None:
    cpu = find("cpu")
    _mode, params = cpu.resolve("threads", {"kind": " zlib "})
    assert params["kind"] == "zlib"
    assert cpu.resolve("threads", None)[1]["kind"] == "python"
    with pytest.raises(WorkloadError) as err:
        cpu.resolve("threads", {"kind": "ruby"})
    assert str(err.value) == "kind must be one of: python, hashlib, zlib; got 'ruby'"
    info = next(p for p in cpu.info().params if p.name == "kind")
    assert info.kind == "str" and info.choices == ("python", "hashlib", "zlib")


def test_start_offers_only_the_methods_this_platform_has() -> None:
    cpu = find("cpu")
    start = next(p for p in cpu.params if p.name == "start")
    assert start.default == "spawn"
    assert set(start.choices) <= set(multiprocessing.get_all_start_methods())
    with pytest.raises(WorkloadError, match="start must be one of"):
        cpu.resolve("processes", {"start": "teleport"})


@pytest.mark.skipif("fork" not in START_METHODS, reason="no fork here")
def test_a_start_method_needs_a_fresh_pool() -> None:
    cpu = find("cpu")
    with pytest.raises(WorkloadError, match="start=fork needs fresh=true"):
        cpu.resolve("processes", {"start": "fork", "fresh": "false"})
    cpu.resolve("processes", {"start": "fork"})
    cpu.resolve("threads", {"start": "fork", "fresh": "false"})  # threads ignore it


# -- the jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", _jobs.KINDS)
def test_each_kind_does_the_same_work_every_time(kind: str) -> None:
    assert _jobs.job(kind, 20_000) == _jobs.job(kind, 20_000)


def test_jobs_do_nothing_more_once_stopped() -> None:
    stop = threading.Event()
    stop.set()
    assert _jobs.job("python", 10**12, stop) == 0
    assert _jobs.job("zlib", 10**12, stop) == 0
    assert _jobs.job("hashlib", 10**12, stop) == _jobs.digest(0)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown job kind 'ruby'"):
        _jobs.job("ruby", 1)


def test_a_crew_runs_calls_on_its_own_threads_and_leaves_none() -> None:
    import anyio

    crew = ThreadCrew(3, name="cpviz worker test")

    async def main() -> set[str]:
        await anyio.to_thread.run_sync(crew.start)
        names: set[str] = set()

        async def one() -> None:
            names.add(await crew.call(lambda: threading.current_thread().name))

        async with anyio.create_task_group() as tg:
            for _ in range(9):
                tg.start_soon(one)
        return names

    names = anyio.run(main)
    assert names and all(n.startswith("cpviz worker test ") for n in names)
    assert crew.alive() == 3
    crew.close()
    assert crew.alive() == 0


# -- runs in the lab ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hashlib", "zlib"])
def test_threads_of_a_gil_releasing_kind_run_and_report_parallelism(lab: Lab, kind: str) -> None:
    model = Model(lab.cores)
    run_id, result = _run(lab, model, "threads", kind=kind, jobs=3, work=20_000)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    # Tiny jobs, so only that the figures are there: CPU time is counted in clock ticks.
    assert result.parallelism >= 0 and extra["work_parallelism"] >= 0
    assert extra["work_wall_s"] > 0
    # Fresh threads by default: their start-up is measured and shown as a phase.
    assert extra["workers"] == 3 and extra["startup_s"] > 0
    phases = model.phases.get(run_id, [])
    assert [p.name for p in phases] == ["startup"]
    assert phases[0].start < phases[0].t and "threads, 3 workers" in phases[0].detail
    assert _crew_threads() == []


@pytest.mark.parametrize("start", START_METHODS)
def test_a_fresh_process_pool_times_its_start_up(lab: Lab, start: str) -> None:
    model = Model(lab.cores)
    run_id, result = _run(lab, model, "processes", start=start, jobs=2, work=20_000)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["start"] == start
    assert extra["startup_s"] > 0
    assert extra["startup_per_worker_s"] == pytest.approx(extra["startup_s"] / extra["workers"],
                                                          abs=1e-5)
    startups = [p for p in model.phases.get(run_id, []) if isinstance(p, Phase)]
    assert len(startups) == 1 and startups[0].name == "startup"
    assert startups[0].start < startups[0].t and startups[0].detail.startswith(start)
    # The run's pool is gone with it, and so is the fork server if it needed one.
    left = [" ".join(c.cmdline()) for c in psutil.Process().children(recursive=True)]
    assert not [c for c in left if "forkserver" in c], left
    assert lab.pool_pids() == []


def test_a_warm_run_has_no_start_up(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id, result = _run(lab, model, "threads", fresh=False, jobs=2, work=20_000)
    assert result.outcome == "completed"
    assert "startup_s" not in dict(result.extra)
    assert model.phases.get(run_id, []) == []


def _threads_in_a_job() -> list[int]:
    """Threads whose stack is inside a CPU job right now."""
    return [
        ident
        for ident, frame in sys._current_frames().items()
        if any(f.f_code.co_filename == _jobs.__file__ for f, _ in traceback.walk_stack(frame))
    ]


@pytest.mark.parametrize("fresh", [True, False])
def test_stopping_a_threads_run_mid_job_leaves_no_thread_working(lab: Lab, fresh: bool) -> None:
    # Each job would keep a thread busy for many seconds if stopping did not reach it.
    run_id = lab.launch("cpu", "threads", {"jobs": 2, "work": 200_000_000, "fresh": fresh})
    while not _threads_in_a_job():
        threading.Event().wait(0.02)
    lab.stop_run(run_id)
    result = lab.wait(run_id, timeout=30)
    assert result is not None and result.outcome == "stopped"
    assert _crew_threads() == []
    # anyio's reused threads are abandoned on stop; they see the flag and leave the job.
    for _ in range(200):
        if not _threads_in_a_job():
            break
        threading.Event().wait(0.05)
    assert _threads_in_a_job() == []


def test_stopping_a_fresh_process_pool_mid_job_ends_its_workers(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("cpu", "processes", {"jobs": 2, "work": 200_000_000})

    def handed_out() -> bool:
        model.apply(lab.stream.drain())
        return any(t.run_id == run_id and t.name.startswith("job") and t.nsteps
                   for t in model.tasks.values())

    while not handed_out():
        threading.Event().wait(0.05)
    workers = [psutil.Process(p) for p in lab.pool_pids()]
    assert workers
    lab.stop_run(run_id)
    result = lab.wait(run_id, timeout=30)
    assert result is not None and result.outcome == "stopped"
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []
