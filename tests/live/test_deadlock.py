"""The no-progress alarm: deadlocks are caught and named, busy or sleeping runs never are (C13)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from cpviz.agent.lab import Lab
from cpviz.agent.progress import describe
from cpviz.agent.tracer import RUN_ID, Tracer
from cpviz.engine.events import Event, RunEnd, RunResult, StallEnd, StallStart, Waiter
from cpviz.workloads._jobs import spin
from cpviz.workloads.registry import Param, RunContext, Workload, catalogue

STALL_S = 0.3


async def _forgotten_event(ctx: RunContext) -> None:
    """A task waits for an Event nobody sets, beside one that waits to be cancelled."""
    never = anyio.Event()

    async def waiting() -> None:
        await never.wait()

    async def idle() -> None:
        await anyio.sleep_forever()

    loop = asyncio.get_running_loop()
    with anyio.move_on_after(ctx.params["give_up_s"]):
        # gather and a plain task: joins must not count as wake-ups.
        await asyncio.gather(
            loop.create_task(waiting(), name="waiting"), loop.create_task(idle(), name="idle")
        )


FORGOTTEN = Workload(
    key="forgotten-event",
    title="An event nobody sets",
    modes=("run",),
    params=(Param("give_up_s", float, 1.5, 0.1, 60.0, "when to give up (s)"),),
    explanation="test only",
    run=_forgotten_event,
    total=lambda mode, params: 0,
)


async def _behind_a_lock(ctx: RunContext) -> None:
    """Two tasks queue on a lock whose holder waits for a worker thread or process."""
    lock = anyio.Lock()

    async def holder() -> None:
        async with lock:
            if ctx.mode == "thread":
                await anyio.to_thread.run_sync(time.sleep, 2.5 * STALL_S)
            else:
                await ctx.in_process(spin, 5_000_000)

    async def queued() -> None:
        async with lock:
            ctx.advance()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder, name="holder")
        await anyio.sleep(0.01)
        for i in range(2):
            tg.start_soon(queued, name=f"queued {i}")


BEHIND = Workload(
    key="behind-a-lock",
    title="Waiting behind busy work",
    modes=("thread", "process"),
    params=(),
    explanation="test only",
    run=_behind_a_lock,
    total=lambda mode, params: 2,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    workloads = (*catalogue(), FORGOTTEN, BEHIND)
    with Lab(stall_s=STALL_S, workloads=workloads) as running:
        yield running


def _run(lab: Lab, key: str, mode: str, **settings: Any) -> tuple[RunResult, list[Event]]:
    """Run to its end; the result and the run's stall events, with its RunEnd, in order."""
    run_id = lab.launch(key, mode, dict(settings))
    seen: list[Event] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for ev in lab.stream.drain():
            if isinstance(ev, StallStart | StallEnd | RunEnd) and ev.run_id == run_id:
                seen.append(ev)
        if seen and isinstance(seen[-1], RunEnd):
            return seen[-1].result, seen
        threading.Event().wait(0.05)
    pytest.fail(f"{key}:{mode} did not end within 120 s")


def _extra(result: RunResult) -> dict[str, Any]:
    return dict(result.extra)


def _named(waiters: tuple[Waiter, ...]) -> set[tuple[str, str, str | None, str | None]]:
    return {(w.kind, w.name, w.waits_on, w.held_by) for w in waiters}


def _one_stall(events: list[Event]) -> StallStart:
    starts = [ev for ev in events if isinstance(ev, StallStart)]
    assert len(starts) == 1
    start = starts[0]
    ends = [ev for ev in events if isinstance(ev, StallEnd)]
    # Closed exactly once, after it opened and before the run's end.
    assert [ev.stall_id for ev in ends] == [start.stall_id]
    assert events.index(start) < events.index(ends[0]) < len(events) - 1
    return start


def test_tasks_deadlock_is_detected_naming_both_waiters_their_locks_and_holders(
    lab: Lab,
) -> None:
    result, events = _run(lab, "deadlock", "tasks", hold_ms=20, give_up_s=2.0)
    start = _one_stall(events)
    assert _named(start.waiters) == {
        ("task", "left", "lock_b", "right"),
        ("task", "right", "lock_a", "left"),
    }
    for waiter in start.waiters:
        assert waiter.frame is not None
        assert os.path.basename(waiter.frame.file) == "deadlock.py"
        assert waiter.frame.code == f"async with {waiter.waits_on}:"
    assert start.since <= start.t
    # A deadlocked run never ends by itself: it gives up and says why.
    extra = _extra(result)
    assert result.outcome == "completed"
    assert extra["deadlocked"] is True
    assert extra["sections_completed"] == 0
    assert extra["stall_detected_s"] >= STALL_S  # the rule: quiet for longer than the threshold
    assert any(
        line.startswith("left waits on lock_b (held by right) at deadlock.py:")
        for line in extra["stall_waiters"]
    )


def test_threads_deadlock_is_detected_from_the_threads_stacks(lab: Lab) -> None:
    result, events = _run(lab, "deadlock", "threads", hold_ms=20, give_up_s=2.0)
    start = _one_stall(events)
    assert _named(start.waiters) == {
        ("thread", "left", "lock_b", None),
        ("thread", "right", "lock_a", None),
    }
    for waiter in start.waiters:
        assert waiter.frame is not None
        assert f"{waiter.waits_on}.acquire(" in waiter.frame.code
    assert result.outcome == "completed"
    assert _extra(result)["deadlocked"] is True
    assert describe(start.waiters[0]).startswith("left (thread) waits on lock_b at deadlock.py:")


@pytest.mark.parametrize("mode", ["ordered", "ordered-threads"])
def test_ordered_locking_completes_without_a_stall(lab: Lab, mode: str) -> None:
    # One worker waits for lock_a longer than the threshold while the other holds it and
    # sleeps: waiting behind a sleeper is not a stall.
    result, events = _run(lab, "deadlock", mode, rounds=1, hold_ms=2.5 * STALL_S * 1000)
    assert result.outcome == "completed"
    assert [ev for ev in events if isinstance(ev, StallStart)] == []
    extra = _extra(result)
    assert extra["deadlocked"] is False and extra["gave_up"] is False
    assert extra["sections_completed"] == 2
    assert "stall_detected_s" not in extra


@pytest.mark.parametrize(
    ("key", "mode", "settings"),
    [
        # Tasks queue on a limiter (a primitive) behind a sleeping call or real socket I/O.
        ("io", "bounded", {"n": 3, "k": 1, "latency_ms": 700}),
        ("io", "bounded", {"n": 3, "k": 1, "latency_ms": 700, "real": True}),
        # ...or on a lock whose holder waits for a busy worker thread or process.
        ("behind-a-lock", "thread", {}),
        ("behind-a-lock", "process", {}),
        ("blocking", "offload", {"duration_s": 1.0, "period_ms": 800, "block_ms": 700}),
        ("cpu", "threads", {"jobs": 2, "work": 3_000_000}),
        ("cpu", "processes", {"jobs": 2, "work": 6_000_000}),
    ],
)
def test_sleeping_io_and_busy_threads_or_processes_raise_no_stall(
    lab: Lab, key: str, mode: str, settings: dict[str, Any]
) -> None:
    result, events = _run(lab, key, mode, **settings)
    assert result.outcome == "completed"
    assert [ev for ev in events if isinstance(ev, StallStart)] == []
    assert "stall_detected_s" not in _extra(result)


def test_a_forgotten_event_is_a_stall_even_behind_gather(lab: Lab) -> None:
    result, events = _run(lab, "forgotten-event", "run")
    start = _one_stall(events)
    # asyncio's Event records no owner; the task that only awaits cancellation is no waiter.
    assert _named(start.waiters) == {("task", "waiting", "never", None)}
    assert result.outcome == "completed"


def _stuck_in_deadlock_code() -> list[str]:
    """Threads whose stack is anywhere in the deadlock workload."""
    out = []
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while f is not None:
            if os.path.basename(f.f_code.co_filename) == "deadlock.py":
                out.append(names.get(ident, str(ident)))
                break
            f = f.f_back
    return out


@pytest.mark.parametrize("mode", ["threads", "tasks"])
def test_stopping_a_deadlocked_run_leaves_nothing_behind(mode: str) -> None:
    before = {t.ident for t in threading.enumerate()}
    lab = Lab(stall_s=STALL_S, workloads=catalogue()).start()
    try:
        run_id = lab.launch("deadlock", mode, {"hold_ms": 20, "give_up_s": 600})
        seen: list[Event] = []
        while not any(isinstance(ev, StallStart) for ev in seen):
            seen.extend(lab.stream.drain())
            threading.Event().wait(0.05)
        lab.stop_run(run_id)
        result = lab.wait(run_id, timeout=10)
        assert result is not None and result.outcome == "stopped"
        seen.extend(lab.stream.drain())
        assert any(isinstance(ev, StallEnd) and ev.run_id == run_id for ev in seen)
        # The run is over, so none of its workers may still be waiting on a lock.
        assert _stuck_in_deadlock_code() == []
        assert not {"left", "right"} & {t.name for t in threading.enumerate()}
    finally:
        lab.close()
    for thread in [t for t in threading.enumerate() if t.ident not in before]:
        thread.join(timeout=2)
    assert [t for t in threading.enumerate() if t.ident not in before and t.is_alive()] == []


def test_the_tracer_knows_each_tasks_run_when_asked_to() -> None:
    async def child() -> None:
        await asyncio.sleep(0)

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        outside = loop.create_task(child())
        RUN_ID.set(7)
        inside = loop.create_task(child())
        await asyncio.gather(outside, inside)
        return id(outside), id(inside)

    loop = asyncio.new_event_loop()
    tracer = Tracer(capacity=1 << 10, track_runs=True)
    try:
        tracer.attach(loop)
        outside, inside = loop.run_until_complete(main())
    finally:
        tracer.detach()
        loop.close()
    assert tracer.run_of is not None
    assert tracer.run_of[outside] == 0 and tracer.run_of[inside] == 7
    assert Tracer().run_of is None  # off unless asked: nothing would ever prune it
