"""The command line: honest JSON for each family, one-line errors, clean Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

CPVIZ = [sys.executable, "-m", "cpviz"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CPVIZ, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_version_and_help() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("cpviz ")
    helped = run("--help")
    assert helped.returncode == 0
    for word in ("run", "list", "--start", "--threshold-ms"):
        assert word in helped.stdout


def test_list_names_every_workload_in_key_order() -> None:
    out = run("list", "--json")
    assert out.returncode == 0
    listed = json.loads(out.stdout)
    assert [w["name"] for w in listed] == [
        "io", "cpu", "blocking", "pipeline", "shared-state", "deadlock", "oversubscribe",
        "amdahl", "server",
    ]
    assert [w["key"] for w in listed] == [str(n) for n in range(1, 10)]
    io = listed[0]
    assert io["modes"] == ["concurrent", "serial", "bounded"]
    assert {p["name"] for p in io["params"]} >= {"n", "latency_ms", "k", "real"}
    assert all(w["explanation"] for w in listed)
    table = run("list")
    assert table.returncode == 0 and "blocking" in table.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nope"], "unknown workload 'nope'; choose one of: io, cpu, blocking"),
        (["run", "io", "--mode", "fast"], "choose one of: concurrent, serial, bounded"),
        (["run", "io", "--set", "n=0"], "n must be from 1 to 20000, got 0"),
        (["run", "io", "--set", "n=many"], "n must be an integer"),
        (["run", "io", "--set", "colour=red"], "unknown parameter 'colour' for io; accepted:"),
        (["run", "io", "--set", "n"], "argument --set: takes key=value"),
        (["run", "io", "--set", "real=maybe"], "real must be true or false"),
        (["run", "blocking", "--baseline"], "--baseline needs a serial mode"),
        (["run", "io", "--threshold-ms", "0"], "must be from 1 to 60000 ms"),
        (["--start", "nope"], "unknown workload 'nope'"),
        (["--start", "cpu:warp"], "unknown mode 'warp' for cpu"),
        (["--set", "n=3"], "--set needs --start"),
        (["--fps", "0"], "must be from 1 to 60"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        ([], "needs an interactive terminal"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("cpviz: error: ")
    assert expected in lines[0]
    assert "Traceback" not in out.stderr


def _json(*args: str) -> dict[str, Any]:
    out = run("run", *args, "--json")
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("workload", "mode", "wall_s", "cpu_s", "parallelism", "tasks", "steps",
                "incidents", "speedup"):
        assert key in result
    return result


def test_run_io_json() -> None:
    result = _json("io", "--mode", "bounded", "--set", "n=40", "--set", "k=10",
                   "--set", "latency_ms=20")
    assert result["workload"] == "io" and result["mode"] == "bounded"
    assert result["tasks"] >= 40 and result["speedup_basis"] == "exact: N × L"


def test_run_io_real_json_talks_http() -> None:
    result = _json("io", "--set", "real=true", "--set", "n=20", "--set", "latency_ms=20")
    assert result["http_requests"] == 20


def test_run_cpu_with_baseline_measures_the_speedup() -> None:
    result = _json("cpu", "--mode", "threads", "--set", "jobs=2", "--set", "work=100000",
                   "--baseline")
    assert result["speedup"] is not None
    assert str(result["speedup_basis"]).startswith("measured")


def test_run_blocking_json_lists_incidents_with_their_line() -> None:
    result = _json("blocking", "--set", "duration_s=0.8", "--set", "period_ms=400",
                   "--set", "block_ms=200")
    incidents = result["incidents"]
    assert isinstance(incidents, list) and incidents
    first = incidents[0]
    assert set(first) >= {"start_s", "duration_s", "file", "line", "function", "code"}
    assert str(first["file"]).endswith("blocking.py") and first["code"] == "time.sleep(block_s)"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_run_stops_everything() -> None:
    proc = subprocess.Popen(
        [*CPVIZ, "run", "cpu", "--mode", "processes", "--set", "work=200000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    me = psutil.Process(proc.pid)
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = [
            c
            for c in me.children(recursive=True)
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        time.sleep(0.1)
    assert workers, "the processes run never started its workers"
    everyone = me.children(recursive=True)
    os.kill(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err
    _, alive = psutil.wait_procs(everyone, timeout=2)
    assert alive == []
