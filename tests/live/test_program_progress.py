"""No progress in a program run as it is (``cpviz run -- python app.py``), as in the lab's runs:
a deadlock among its tasks is called, with the tasks and the locks they wait on; a server that
sits idle between requests, its tasks waiting on an Event and a Queue, is not."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.paths import ROOT

PROGRAMS = ROOT / "tests" / "corpus" / "programs"
CPVIZ = [sys.executable, "-m", "cpviz"]


def _run(duration: str, *program: str) -> tuple[dict[str, Any], str]:
    out = subprocess.run(
        [*CPVIZ, "run", "--json", "--duration", duration, "--", sys.executable, *program],
        capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert out.stdout, out.stderr
    return json.loads(out.stdout), out.stderr


def _line(name: str, text: str) -> int:
    return next(n for n, line in enumerate((PROGRAMS / name).read_text().splitlines(), 1)
                if text in line)


def test_two_tasks_taking_two_locks_in_opposite_orders_are_called_stuck() -> None:
    # stall_s is 1 s; --duration leaves it three, and the deadlock is there from the start.
    result, _err = _run("4", str(PROGRAMS / "task_deadlock.py"))
    assert result["ended_by"] == "--duration 4"
    assert result["stall_detected_s"] >= 1.0
    left = _line("task_deadlock.py", "print(\"left got both\")") - 1
    right = _line("task_deadlock.py", "print(\"right got both\")") - 1
    assert result["stall_waiters"] == [
        f"left waits on lock_b at task_deadlock.py:{left}",
        f"right waits on lock_a at task_deadlock.py:{right}",
    ]


def test_a_server_idle_between_requests_is_not_called_stuck() -> None:
    # A request, then 1.6 s of nothing (longer than stall_s), then the next: in between, every
    # task waits on an Event or a Queue, and the listening socket is what will wake them.
    result, err = _run("5", str(PROGRAMS / "idle_server.py"), "3", "1.6")
    assert result["exit_status"] == 0  # it handles SIGINT itself and ends well
    served = next(int(line.split()[1]) for line in err.splitlines()
                  if line.startswith("served "))
    assert served >= 1, err  # at least one request, and the idle gap after it
    assert "stall_detected_s" not in result, result.get("stall_waiters")
    assert result["tasks"] >= 4 + served
