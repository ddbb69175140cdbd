"""No-progress in people's own programs, end to end through the observed process.

A plain ``def main()`` runs in a worker thread, so the run's one task waits on that thread, and
the thread waits inside the program. No stall while the work is happening: in ``Pool.map`` while
the pool's processes compute, or in ``join`` on a thread that sleeps or waits for I/O. A stall
when nothing will ever happen: pool workers that all wait forever, or two threads locked in
opposite orders (named: both threads and the lock each waits on).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cpviz.engine.accounting import session_members
from cpviz.engine.events import StallStart
from cpviz.engine.observed import ObservedLab
from cpviz.workloads.registry import lab_catalogue
from tests.paths import ROOT

CORPUS = ROOT / "tests" / "corpus"
#: Bounds on every wait: generous, since the machines here are shared and noisy.
RUN_TIMEOUT_S = 120.0
STALL_TIMEOUT_S = 60.0


def _cpviz() -> list[str]:
    """cpviz as people start it: the venv's console script (else ``python -m cpviz``)."""
    script = Path(sys.executable).with_name("cpviz")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cpviz"]


#: Threads that ``main`` joins and that sleep on the world outside: they will wake by themselves.
SLEEPERS = """
import socket
import threading
import time


def sleeping():
    napper = threading.Thread(target=time.sleep, args=(NAP_S,), name="napper")
    napper.start()
    napper.join()


def late_answer():
    asking, answering = socket.socketpair()

    def answer():
        time.sleep(NAP_S)
        answering.sendall(b"late")

    threading.Thread(target=answer, name="answer").start()
    reader = threading.Thread(target=asking.recv, args=(16,), name="reader")
    reader.start()
    reader.join()
"""
#: A pool whose workers all wait on an Event nobody sets: no CPU anywhere, a stall.
STUCK_POOL = """
import multiprocessing

never = None


def remember(event):
    global never
    never = event


def job(i):
    never.wait()
    return i


def main():
    context = multiprocessing.get_context("fork")  # this file cannot be imported by name
    event = context.Event()
    with context.Pool(2, initializer=remember, initargs=(event,)) as pool:
        pool.map(job, range(4))
"""


def _run_json(spec: str) -> dict[str, Any]:
    """``cpviz run SPEC --json``, as people run it; the result's JSON."""
    viewer = subprocess.Popen(
        [*_cpviz(), "run", spec, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        out, err = viewer.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: cpviz then ends the observed side and all it started.
        viewer.terminate()
        try:
            viewer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.communicate()
        pytest.fail(f"cpviz run {spec} did not end within {RUN_TIMEOUT_S:g} s")
    assert viewer.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    assert result["outcome"] == "completed"
    return result


def _no_stall(result: dict[str, Any]) -> None:
    # A run that had a stall carries its figures; this one must have none.
    assert "stall_detected_s" not in result, result.get("stall_waiters")
    assert "stall_waiters" not in result


def _first_stall(spec: str) -> StallStart:
    """Run a program that never ends until a stall opens; stop it, and check nothing is left."""
    workloads = lab_catalogue(spec)
    user = workloads[-1]
    lab = ObservedLab(workloads, user=spec, sample=False)
    stall: StallStart | None = None
    observed: int | None = None
    try:
        lab.start()
        observed = lab.pid
        run_id = lab.start_run(user, user.modes[0], {})
        deadline = time.monotonic() + STALL_TIMEOUT_S
        while stall is None and time.monotonic() < deadline:
            for event in lab.stream.drain():
                if isinstance(event, StallStart) and event.run_id == run_id:
                    stall = event
            time.sleep(0.05)
        lab.stop_run(run_id)  # its threads never let go: closing kills the observed process
    finally:
        lab.close()
    # Nothing of the observed side is left: what was stuck died with its process.
    assert observed is not None
    assert session_members(observed) == []
    if stall is None:
        pytest.fail(f"no stall within {STALL_TIMEOUT_S:g} s")
    return stall


@pytest.mark.parametrize("function", ["main", "long_items"])
def test_a_busy_pool_map_in_a_plain_def_is_no_stall(function: str) -> None:
    # In long_items no result comes back for longer than the threshold: only CPU tells.
    _no_stall(_run_json(f"{CORPUS / 'pool_map.py'}:{function}"))


@pytest.mark.parametrize("function", ["sleeping", "late_answer"])
def test_joining_a_thread_that_sleeps_or_waits_for_io_is_no_stall(
    tmp_path: Path, function: str
) -> None:
    # Longer than the stall threshold (1 s), with no CPU used anywhere meanwhile.
    (tmp_path / "sleepers.py").write_text(f"NAP_S = 2.5\n{SLEEPERS}")
    _no_stall(_run_json(f"{tmp_path / 'sleepers.py'}:{function}"))


def test_pool_workers_that_all_wait_forever_are_a_stall(tmp_path: Path) -> None:
    # The pool's own threads wait on pipes and sentinels: on its workers, which do nothing.
    (tmp_path / "stuck_pool.py").write_text(STUCK_POOL)
    stall = _first_stall(f"{tmp_path / 'stuck_pool.py'}:main")
    assert [(w.kind, w.waits_on) for w in stall.waiters] == [("thread", "pool")]


def test_a_lock_order_deadlock_in_a_plain_def_is_caught_and_named() -> None:
    stall = _first_stall(f"{CORPUS / 'lock_order.py'}:main")
    named = {(w.kind, w.name, w.waits_on) for w in stall.waiters}
    assert {("thread", "forward", "lock_b"), ("thread", "backward", "lock_a")} <= named, named
    for waiter in stall.waiters:
        if waiter.name in ("forward", "backward"):
            assert waiter.frame is not None
            assert Path(waiter.frame.file).name == "lock_order.py"
            assert waiter.frame.code == f"with {waiter.waits_on}:"
