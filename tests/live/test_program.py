"""Programs run as they are written: ``cpviz run -- python app.py args``, the way people would.

Each program under examples/ and tests/corpus/programs is ordinary code nobody wrote for
cpviz. The tests assert what cpviz reports about it (never how long anything took): its loop
traced and the freeze named at its line, its output kept out of ``--json``, its exit status and
exception, Ctrl+C and ``--duration`` reporting what was measured so far.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

PROGRAMS = ROOT / "tests" / "corpus" / "programs"
#: The README's examples: ordinary programs too, and the tests keep them working.
EXAMPLES = ROOT / "examples"
CPVIZ = [sys.executable, "-m", "cpviz"]


def _run(*args: str, status: int = 0) -> tuple[dict[str, Any], str]:
    out = subprocess.run([*CPVIZ, "run", "--json", *args], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert out.returncode == status, out.stderr
    return json.loads(out.stdout), out.stderr


def _blocks_line(path: Path) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1)
                if "# BLOCKS" in line)


def test_a_script_with_arguments_runs_as_main_and_its_loop_is_traced() -> None:
    path = EXAMPLES / "fetch_args.py"
    result, err = _run("--", sys.executable, str(path), "30", "0.05")
    assert result["outcome"] == "completed" and result["exit_status"] == 0
    assert result["params"]["argv"].endswith("fetch_args.py 30 0.05")
    # Its output went to stderr, never into the JSON on stdout.
    assert "fetching 30" in err and "got 30" in err
    assert result["tasks"] >= 31 and result["steps"] >= 60
    (incident,) = result["incidents"]
    assert incident["cause"] == "blocking" and incident["blocking_call"] == "time.sleep"
    assert Path(incident["file"]).name == path.name
    assert incident["line"] == _blocks_line(path)


def test_the_short_form_and_a_def_main_that_calls_asyncio_run() -> None:
    path = EXAMPLES / "def_main.py"
    result, _err = _run(str(path.relative_to(ROOT)))
    (incident,) = result["incidents"]
    assert incident["line"] == _blocks_line(path)
    assert incident["function"] == "amain"


def test_a_program_that_raises_reports_its_exception_and_last_frames() -> None:
    result, err = _run("--", sys.executable, str(PROGRAMS / "raises.py"), status=1)
    assert result["outcome"] == "failed: ValueError: boom: x"
    assert result["exit_status"] == 1
    assert any("raises.py" in frame and "parse" in frame for frame in result["last_frames"])
    assert "Traceback" in err  # printed as the interpreter would, on stderr


def test_a_pools_workers_are_the_programs_processes() -> None:
    result, _err = _run("--", sys.executable, str(EXAMPLES / "pool_script.py"))
    assert result["outcome"] == "completed"
    # Eight jobs spinning 0.4 s each, in two worker processes: their CPU is counted with the
    # program's (the observed tree, workers included). The program's own process, which only
    # waits in Pool.map, uses well under a tenth of a second; the workers, seconds (at least a
    # good part of that on a machine busy with other work).
    assert result["cpu_s"] > 0.5


def test_ctrl_c_stops_a_server_and_still_reports_what_it_measured() -> None:
    proc = subprocess.Popen(
        [*CPVIZ, "run", "--json", "--", sys.executable, str(EXAMPLES / "echo_server.py")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "serving" in line or not line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    result = json.loads(out)
    assert result["ended_by"] == "Ctrl+C"
    assert "bye" in err  # the program's own KeyboardInterrupt handler ran
    assert result["tasks"] >= 1


def test_duration_ends_a_program_that_would_run_forever() -> None:
    result, err = _run("--duration", "1", "--", sys.executable,
                       str(EXAMPLES / "echo_server.py"))
    assert result["ended_by"] == "--duration 1"
    assert "bye" in err


def test_a_trio_program_is_traced_and_its_blocking_call_named_at_its_line() -> None:
    pytest.importorskip("trio", reason="trio is in the test extra; install '.[test]'")
    path = EXAMPLES / "trio_sleep.py"
    result, _err = _run("--", sys.executable, str(path))
    assert result["tasks"] >= 4 and result["steps"] > 10
    (incident,) = result["incidents"]
    assert incident["line"] == _blocks_line(path) and incident["cause"] == "blocking"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--", sys.executable, "tests/corpus/programs/nothere.py"], "no such file"),
        (["--", sys.executable, "-m", "no_such_module_here"], "no module named"),
        (["--", "/bin/ls", "x.py"], "is not a Python interpreter"),
        (["--", sys.executable, "-u", "x.py"], "is not supported"),
        (["--", sys.executable, "tests/corpus"], "is a directory"),
    ],
)
def test_a_program_that_cannot_run_is_one_line_and_status_2(
    words: list[str], message: str
) -> None:
    out = subprocess.run([*CPVIZ, "run", *words], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
