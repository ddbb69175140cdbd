"""cpviz bench: the rows it plans, verdicts worded from the row's own figures, and a real run."""

from __future__ import annotations

import pytest

from cpviz import proof
from cpviz.cli import main
from cpviz.engine.observed import ObservedLab
from cpviz.workloads.registry import catalogue


def test_the_plan_covers_the_comparisons_the_table_promises() -> None:
    groups = {row.group for row in proof.plan(2, quick=True)}
    assert {"I/O", "CPU (python)", "CPU (hashlib)", "CPU (zlib)", "blocking", "Amdahl"} <= groups
    for row in proof.plan(2, quick=True):
        if row.baseline is not None:
            assert row.baseline in {r.name for r in proof.plan(2, quick=True)}


def test_a_small_real_run_gives_rows_with_figures_and_verdicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        proof.Row("I/O", "io", "serial", {"n": 3, "latency_ms": 20}, label="io serial"),
        proof.Row("I/O", "io", "concurrent", {"n": 50, "latency_ms": 20}, label="io concurrent"),
    ]
    monkeypatch.setattr(proof, "plan", lambda cores, quick: rows)
    seen: list[str] = []
    lab = ObservedLab(catalogue(), sample=False)
    report = proof.run_bench(lab, True, lambda i, n, row: seen.append(row.name))
    assert seen == ["io serial", "io concurrent"]
    serial, concurrent = report["rows"]
    assert serial["outcome"] == concurrent["outcome"] == "completed"
    assert concurrent["verdict"].startswith("I/O-bound: overlapping waits gave ×")
    assert concurrent["speedup"] is not None and concurrent["speedup"] > 1
    assert serial["verdict"].startswith("serial: one wait after another")


def test_bench_refuses_a_bad_core_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--cores", "0"]) == 2
    assert capsys.readouterr().err.startswith("cpviz: error: --cores must be from 1 to")
