"""The corpus: scenes made on purpose, each asserting why the loop froze (never how long).

Each scene runs as the user's own code through ``cpviz run file.py:function --json``, the way a
person would run it, so the whole path is tested: the observed process, the channel, the
viewer's reading of the loop thread from outside, and the classification.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

CORPUS = ROOT / "tests" / "corpus"
CPVIZ = [sys.executable, "-m", "cpviz"]


def _run(spec: str, *options: str) -> dict[str, Any]:
    out = subprocess.run(
        [*CPVIZ, "run", spec, "--json", *options],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    assert result["outcome"] == "completed"
    return result


def _line_of(path: Path, function: str) -> int:
    """The ``# BLOCKS`` line inside ``function``."""
    inside = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith(("async def ", "def ")):
            inside = f" {function}(" in line
        if inside and "# BLOCKS" in line:
            return number
    raise AssertionError(f"no # BLOCKS line in {function}")


@pytest.mark.parametrize(
    ("function", "call"),
    [
        ("sleep_on_loop", "time.sleep"),
        ("select_on_loop", "select.select"),
        ("subprocess_on_loop", "subprocess.run"),
        ("pbkdf2_on_loop", "hashlib.pbkdf2_hmac"),
    ],
)
def test_a_blocking_call_on_the_loop_is_blocking_at_its_line(function: str, call: str) -> None:
    path = CORPUS / "blocking_calls.py"
    result = _run(f"tests/corpus/blocking_calls.py:{function}")
    assert result["incidents"], "the call froze the loop and no freeze was reported"
    for incident in result["incidents"]:
        assert incident["cause"] == "blocking", incident
        assert Path(incident["file"]).name == path.name
        assert incident["line"] == _line_of(path, function)
        assert incident["blocking_call"] == call


def test_threads_running_python_beside_a_sleeping_loop_starve_it_of_the_gil_never_block_it(
) -> None:
    result = _run("tests/corpus/gil_threads.py:main")
    for incident in result["incidents"]:
        # gil; or cpu, where something outside the test holds the cores too. Never blocking.
        assert incident["cause"] in ("gil", "cpu"), incident
        assert incident["file"] is None  # nothing in the loop's own code is to blame
        if incident["cause"] == "gil":
            assert "spin()" in incident["cause_detail"]


def test_a_collection_over_a_million_cyclic_objects_is_gc() -> None:
    result = _run("tests/corpus/gc_pause.py:main")
    collections = [i for i in result["incidents"] if i["cause"] == "gc"]
    assert collections, result["incidents"]
    for incident in collections:
        assert incident["gc_s"] > 0
        assert "generation 2" in incident["cause_detail"]
    # Building the objects is the program's own work on the loop: blocking, never gc.
    assert all(i["cause"] in ("gc", "blocking") for i in result["incidents"])


def _realtime_allowed() -> bool:
    chrt = shutil.which("chrt")
    if chrt is None:
        return False
    return subprocess.run([chrt, "-f", "1", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(sys.platform != "linux", reason="run delay is read from Linux's /proc")
def test_a_realtime_hog_on_the_loops_core_starves_it_of_cpu_never_blocks_it() -> None:
    """Normal-priority hogs do not starve a mostly sleeping loop on Linux; a SCHED_FIFO one on
    its core does, and starves the watchdog beside it too: the freeze is still reported."""
    if not _realtime_allowed():
        pytest.skip("real-time priority (chrt -f) is not permitted here, so no hog can starve "
                    "the loop")
    hog = (
        "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 0.6:\n    pass\n"
    )

    def starve() -> None:
        subprocess.run(["chrt", "-f", "10", "taskset", "-c", "0", sys.executable, "-c", hog],
                       timeout=30, check=True)

    # The observed side is pinned to core 0 (--cores 1); the hog starts once its run is going.
    timer = threading.Timer(1.5, starve)
    timer.start()
    try:
        result = _run("tests/corpus/calm_loop.py:main", "--cores", "1")
    finally:
        timer.join(timeout=30)
    assert result["incidents"], "the hog starved the loop and no freeze was reported"
    for incident in result["incidents"]:
        assert incident["cause"] == "cpu", incident
        assert "no CPU" in incident["cause_detail"]


@pytest.mark.parametrize(
    ("workload", "options"),
    [
        ("blocking", ["--mode", "async-sleep", "--set", "duration_s=2"]),
        ("blocking", ["--mode", "offload", "--set", "duration_s=2"]),
        ("io", ["--mode", "concurrent"]),
        ("pipeline", ["--set", "messages=200"]),
    ],
)
def test_calm_scenes_raise_no_freeze_and_no_stall(workload: str, options: list[str]) -> None:
    result = _run(workload, *options)
    assert result["incidents"] == []
    assert not result.get("stall_detected_s")
