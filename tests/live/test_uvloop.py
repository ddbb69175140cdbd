"""A program on uvloop, run as it is: its loop is C code, so cpviz cannot trace its task steps,
but the heartbeat runs on it. The freeze is named at its line, and the result says in one line
that steps were not traced, so no task and no step never reads as "nothing ran"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

pytest.importorskip("uvloop")

PROGRAM = ROOT / "tests" / "corpus" / "programs" / "uvloop_sleep.py"
CPVIZ = [sys.executable, "-m", "cpviz"]


def _blocks_line() -> int:
    return next(n for n, line in enumerate(PROGRAM.read_text().splitlines(), 1)
                if "# BLOCKS" in line)


@pytest.mark.parametrize("how", [[], ["runner"]], ids=["uvloop.run", "Runner(loop_factory)"])
def test_a_freeze_on_uvloop_is_named_and_untraced_steps_are_said(how: list[str]) -> None:
    out = subprocess.run([*CPVIZ, "run", "--json", "--", sys.executable, str(PROGRAM), *how],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["outcome"] == "completed"
    (incident,) = result["incidents"]
    assert incident["blocking_call"] == "time.sleep" and incident["function"] == "main"
    assert incident["file"].endswith("uvloop_sleep.py") and incident["line"] == _blocks_line()
    assert result["tasks"] == 0
    note = result["note"]
    assert "\n" not in note and note.startswith("uvloop.Loop: task steps are not traced")
    assert "done" in out.stderr  # the program's own output, never in the JSON


def test_the_table_says_it_too() -> None:
    out = subprocess.run([*CPVIZ, "run", "--", sys.executable, str(PROGRAM)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "task steps are not traced" in out.stdout
    assert "uvloop_sleep.py:" in out.stdout  # the freeze, at its line
