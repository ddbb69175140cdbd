"""Sweeps over worker counts: oversubscribe (C10) and Amdahl's law (C11)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.events import RunResult
from cpviz.engine.headless import finish
from cpviz.engine.model import Model
from cpviz.workloads.amdahl import amdahl_speedup, split
from cpviz.workloads.cpu import usable_cores
from cpviz.workloads.oversubscribe import worker_counts
from cpviz.workloads.registry import WorkloadError, catalogue, find

#: The longest a run here may take before the test fails instead of hanging.
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(workloads=catalogue()) as running:
        yield running


def _run(lab: Lab, model: Model, key: str, mode: str, **settings: object) -> tuple[int, RunResult]:
    run_id = lab.launch(key, mode, dict(settings))
    result = finish(lab, model, run_id, timeout=RUN_TIMEOUT_S)
    return run_id, result


# -- Amdahl's law -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "n", "expected"),
    [
        (0.0, 1, 1.0),
        (0.0, 4, 4.0),  # nothing serial: n workers, n times as fast
        (1.0, 8, 1.0),  # all serial: more workers change nothing
        (0.5, 2, 4 / 3),
        (0.2, 4, 2.5),
        (0.25, 3, 2.0),
        (0.1, 1, 1.0),
    ],
)
def test_the_law_gives_exact_values(serial: float, n: int, expected: float) -> None:
    assert amdahl_speedup(serial, n) == pytest.approx(expected, rel=1e-12)


def test_the_law_never_passes_one_over_the_serial_fraction() -> None:
    assert amdahl_speedup(0.05, 10**9) < 20 < amdahl_speedup(0.05, 10**9) + 1e-6


@pytest.mark.parametrize(
    ("serial", "n"),
    [(-0.1, 2), (1.5, 2), (math.nan, 2), (True, 2), (0.5, 0), (0.5, -3), (0.5, 2.5), (0.5, True)],
)
def test_the_law_refuses_what_is_not_a_fraction_or_a_worker_count(serial: float, n: int) -> None:
    with pytest.raises(ValueError):
        amdahl_speedup(serial, n)


def test_shares_differ_by_at_most_one_and_add_up() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 4) == [1, 1]
    assert split(0, 3) == []
    assert sum(split(12_345, 7)) == 12_345


def test_amdahl_declares_the_serial_fraction_and_refuses_nan() -> None:
    amdahl = find("amdahl")
    assert amdahl.resolve(None, None)[1]["serial"] == 0.2
    with pytest.raises(WorkloadError, match="serial must be"):
        amdahl.resolve(None, {"serial": "nan"})
    with pytest.raises(WorkloadError, match=r"serial must be from 0\.0 to 1\.0"):
        amdahl.resolve(None, {"serial": "1.5"})


@pytest.mark.parametrize(("mode", "kind"), [("processes", "python"), ("threads", "hashlib")])
def test_a_tiny_amdahl_sweep_measures_each_worker_count_beside_the_law(
    lab: Lab, mode: str, kind: str
) -> None:
    model = Model(lab.cores)
    run_id, result = _run(lab, model, "amdahl", mode, serial=0.5, work=20_000, max_workers=3,
                          kind=kind)
    assert result.outcome == "completed"
    points = model.sweeps[run_id]
    assert [p.x for p in points] == [1.0, 2.0, 3.0]
    for p in points:
        figures = dict(p.figures)
        assert set(figures) == {"speedup", "law", "wall_s", "parallelism"}
        assert figures["law"] == pytest.approx(amdahl_speedup(0.5, int(p.x)))
        assert figures["wall_s"] > 0 and figures["speedup"] > 0
    assert dict(points[0].figures)["speedup"] == 1.0  # measured against itself
    extra = dict(result.extra)
    assert extra["law_limit"] == 2.0 and extra["law_at_max"] == pytest.approx(1.5)
    # One fresh set of workers per point, each with its start-up timed.
    startups = [p for p in model.phases[run_id] if p.name == "startup"]
    assert len(startups) == 3 and all(p.start < p.t for p in startups)
    assert model.runs[run_id].done == model.runs[run_id].total


# -- oversubscription ---------------------------------------------------------------------------


def test_worker_counts_double_and_include_the_cores_and_the_maximum() -> None:
    assert worker_counts(64, 2) == [1, 2, 4, 8, 16, 32, 64]
    assert worker_counts(6, 3) == [1, 2, 3, 4, 6]
    assert worker_counts(1, 8) == [1]


def test_oversubscribe_refuses_fewer_jobs_than_workers() -> None:
    with pytest.raises(WorkloadError, match="jobs must be at least max_workers"):
        find("oversubscribe").resolve("threads", {"max_workers": "8", "jobs": "4"})


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_tiny_oversubscribe_sweep_reports_throughput_and_switches(lab: Lab, mode: str) -> None:
    model = Model(lab.cores)
    run_id, result = _run(lab, model, "oversubscribe", mode, max_workers=4, jobs=4, work=5_000)
    assert result.outcome == "completed"
    counts = worker_counts(4, usable_cores())
    points = model.sweeps[run_id]
    assert [int(p.x) for p in points] == counts
    for p in points:
        figures = dict(p.figures)
        assert set(figures) >= {"throughput", "ctx_switches", "ctx_switches_per_s",
                                "parallelism", "wall_s"}
        assert figures["throughput"] > 0 and figures["ctx_switches"] >= 0
        assert figures["throughput"] == pytest.approx(4 / figures["wall_s"])
    extra = dict(result.extra)
    assert extra["best_workers"] in counts
    assert extra["jobs_per_s_at_max"] == pytest.approx(dict(points[-1].figures)["throughput"],
                                                       abs=1e-3)
    startups = [p for p in model.phases[run_id] if p.name == "startup"]
    assert len(startups) == len(counts)
    assert model.runs[run_id].done == len(counts) * 4


def test_cpviz_run_prints_the_sweep_with_the_law_beside_it() -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "cpviz", "run", "amdahl", "--set", "max_workers=2",
         "--set", "work=400000", "--set", "serial=0.5", "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    sweep = json.loads(out.stdout)["sweep"]
    assert [p["x"] for p in sweep] == [1.0, 2.0]
    assert [round(p["law"], 6) for p in sweep] == [1.0, round(1 / (0.5 + 0.5 / 2), 6)]
    assert all(p["speedup"] > 0 and p["wall_s"] > 0 for p in sweep)
