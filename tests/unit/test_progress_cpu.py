"""No-progress means no progress: the detector's rules beyond the tasks, on a manual clock.

A run whose tasks all look stuck is still alive while a timer the run set is still to fire,
while a Python thread of the program moves or a thread or process below it keeps using CPU (a
``def main()`` waiting in ``Pool.map``), or while a thread sleeps on the world outside (a joined
thread in ``time.sleep`` or ``recv``). The detector's tests script the program: no /proc, no
threads, no real time, and times are binary fractions so every sum is exact. The tests of the
real reader (:class:`ProgramView`) read a made-up /proc, with real threads, always released,
only where a stack must be read.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import multiprocessing
import multiprocessing.connection
import os
import queue
import sys
import threading
import time
from array import array
from collections.abc import Callable, Coroutine, Hashable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psutil
import pytest

from cpviz.agent.program_view import CPU_SHARE, ProgramView
from cpviz.agent.progress import ProgressDetector, describe
from cpviz.agent.tracer import RUN_ID, Tracer
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import Event, StallStart, Waiter

STALL_S = 1.0
CHECK_S = 1 / 8
#: A whole core for one check period, and a poller's sliver of it (under the floor).
BUSY = CHECK_S
POLL = CPU_SHARE * CHECK_S / 4
THREAD: Hashable = ("thread", 7)
CHILD: Hashable = ("process", 4242)


class _Ring:
    """The tracer as the detector reads it: an empty ring (no task ever steps here)."""

    capacity = 8
    origin = 0.0

    def __init__(self) -> None:
        self._buf = array("d", bytes(8 * 4 * self.capacity))
        self.written = 0
        self.dropped_total = 0
        self.run_of: dict[int, int] = {}
        #: The tasks, kept alive: one stuck in a reference cycle would be collected mid-test.
        self.tasks: list[asyncio.Task[Any]] = []


class _Program:
    """The program as the test scripts it: each thread's or process's CPU seconds so far,
    whether a Python thread moved and whether one sleeps on the outside; it records what it
    was asked."""

    def __init__(self) -> None:
        self.seconds: dict[Hashable, float] = {}
        self.python_moved = False
        self.sleeps_outside = False
        self.read: list[Hashable] = []
        self.readings = 0
        self.asked = 0

    def moved(self) -> bool:
        self.asked += 1
        return self.python_moved

    def cpu(self) -> Iterator[tuple[Hashable, float]]:
        self.readings += 1
        for key, value in list(self.seconds.items()):
            self.read.append(key)
            yield key, value

    def waits_outside(self) -> bool:
        return self.sleeps_outside


def _spawn(
    loop: asyncio.AbstractEventLoop, ring: _Ring, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """A task of run 1, started in the run's context (as the lab starts a run's tasks)."""
    context = contextvars.copy_context()
    context.run(RUN_ID.set, 1)
    task = loop.create_task(coro, name=name, context=context)
    ring.run_of[id(task)] = 1
    ring.tasks.append(task)
    loop.run_until_complete(asyncio.sleep(0))
    return task


async def _waits(gate: asyncio.Event) -> None:
    await gate.wait()


def _gate_waiter(
    loop: asyncio.AbstractEventLoop,
    ring: _Ring,
    body: Callable[[asyncio.Event], Coroutine[Any, Any, None]] = _waits,
) -> asyncio.Task[None]:
    """A run-1 task stuck on an Event nobody sets (``body`` may set a timer first)."""
    return _spawn(loop, ring, body(asyncio.Event()), "waiting")


def _detector(ring: _Ring, clock: ManualClock, events: list[Event],
              program: _Program | None) -> ProgressDetector:
    detector = ProgressDetector(cast(Tracer, ring), clock, stall_s=STALL_S, check_s=CHECK_S,
                                emit=events.append, program=program)
    detector.watch(1, since=0.0)
    return detector


def _checks(detector: ProgressDetector, clock: ManualClock, loop: asyncio.AbstractEventLoop,
            until: float, between: Callable[[], None] = lambda: None) -> None:
    """Check every CHECK_S up to ``until``; ``between`` runs before each check."""
    while clock.now() + CHECK_S <= until:
        clock.advance(CHECK_S)
        between()
        detector.check(clock.now(), loop)


def _stalls(events: list[Event]) -> list[StallStart]:
    return [e for e in events if isinstance(e, StallStart)]


# -- CPU --------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [THREAD, CHILD], ids=["thread", "child process"])
def test_no_stall_while_the_programs_cpu_moves_and_one_once_it_stopped_for_stall_s(
    loop: asyncio.AbstractEventLoop, who: Hashable
) -> None:
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring)
    program.seconds[who] = 0.0

    def work() -> None:
        program.seconds[who] += BUSY

    _checks(detector, clock, loop, 3.0, work)  # stuck by its stack, yet working all along
    assert _stalls(events) == []
    _checks(detector, clock, loop, 4.0)  # it stopped at 3.0: quiet, but not past stall_s yet
    assert _stalls(events) == []
    _checks(detector, clock, loop, 4.0 + CHECK_S)
    (stall,) = _stalls(events)
    assert (stall.t, stall.since) == (4.0 + CHECK_S, 3.0)  # since the last check it moved
    assert [(w.kind, w.name, w.waits_on) for w in stall.waiters] == [("task", "waiting", "gate")]


def test_cpu_under_the_floor_is_no_progress(loop: asyncio.AbstractEventLoop) -> None:
    # A thread that polls a lock with a timeout wakes a few times a second: not work.
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring)
    program.seconds[THREAD] = 0.0

    def poll() -> None:
        program.seconds[THREAD] += POLL

    _checks(detector, clock, loop, STALL_S + CHECK_S, poll)
    (stall,) = _stalls(events)
    assert (stall.t, stall.since) == (STALL_S + CHECK_S, 0.0)


def test_a_thread_or_process_first_seen_counts_all_its_cpu(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Started since the last reading (or never read before): its CPU so far is all new.
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring)
    _checks(detector, clock, loop, 0.5)
    program.seconds[CHILD] = 2.0
    _checks(detector, clock, loop, 1.5 + CHECK_S)
    assert _stalls(events) == []
    _checks(detector, clock, loop, 1.75)
    (stall,) = _stalls(events)
    assert stall.since == 0.5 + CHECK_S


def test_a_reused_id_with_less_cpu_is_a_new_thread(loop: asyncio.AbstractEventLoop) -> None:
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring)
    program.seconds[THREAD] = 5.0
    _checks(detector, clock, loop, 0.5)
    program.seconds[THREAD] = 1.0  # the old thread ended; a new one got its id and ran for 1 s
    _checks(detector, clock, loop, 1.5 + CHECK_S)
    assert _stalls(events) == []
    _checks(detector, clock, loop, 1.75)
    (stall,) = _stalls(events)
    assert stall.since == 0.5 + CHECK_S


def test_the_cpu_is_read_only_for_a_run_that_looks_stuck_and_stops_at_the_first_that_ran(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    sleeper = _spawn(loop, ring, asyncio.sleep(3600), "sleeper")
    _gate_waiter(loop, ring)
    program.seconds = {("thread", 1): 0.0, ("thread", 2): 0.0, CHILD: 0.0}
    _checks(detector, clock, loop, 2.0)
    assert program.readings == 0, "a run with a wake-up coming needs no CPU figures"

    sleeper.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    _checks(detector, clock, loop, 2.0 + CHECK_S)
    assert (program.readings, program.read) == (1, [("thread", 1), ("thread", 2), CHILD])

    program.read.clear()
    program.seconds[("thread", 1)] += BUSY
    program.seconds[CHILD] += BUSY
    _checks(detector, clock, loop, 2.0 + 2 * CHECK_S)
    assert program.read == [("thread", 1)], "the first thread that ran is enough"
    assert _stalls(events) == []


def test_without_a_cpu_reader_the_rule_is_the_tasks_alone(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # A detector never attached, with no reader given, has no CPU evidence (and reads no /proc).
    clock, events, ring = ManualClock(), list[Event](), _Ring()
    detector = _detector(ring, clock, events, None)
    _gate_waiter(loop, ring)
    _checks(detector, clock, loop, STALL_S + CHECK_S)
    (stall,) = _stalls(events)
    assert stall.since == 0.0


# -- timers -----------------------------------------------------------------------------------


async def _call_later(gate: asyncio.Event) -> None:
    asyncio.get_running_loop().call_later(3600, gate.set)
    await gate.wait()


async def _deadline(gate: asyncio.Event) -> None:
    async with asyncio.timeout(3600):  # it would end the wait, not let it go on
        await gate.wait()


async def _cpviz_own(gate: asyncio.Event) -> None:
    waiter = Waiter("task", "x", None)
    asyncio.get_running_loop().call_later(3600, functools.partial(describe, waiter))
    await gate.wait()


async def _outside_the_run(gate: asyncio.Event) -> None:
    contextvars.Context().run(asyncio.get_running_loop().call_later, 3600, gate.set)
    await gate.wait()


async def _another_runs(gate: asyncio.Event) -> None:
    other = contextvars.copy_context()
    other.run(RUN_ID.set, 2)
    other.run(asyncio.get_running_loop().call_later, 3600, gate.set)
    await gate.wait()


def test_a_timer_the_run_set_is_a_wake_up_coming(loop: asyncio.AbstractEventLoop) -> None:
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring, _call_later)  # nothing awaits the timer; it will set the gate
    _checks(detector, clock, loop, 5.0)
    assert _stalls(events) == []
    assert program.readings == 0


@pytest.mark.parametrize(
    "body", [_deadline, _cpviz_own, _outside_the_run, _another_runs],
    ids=["a deadline", "cpviz's own", "outside any run", "another run's"],
)
def test_timers_that_do_not_count(
    loop: asyncio.AbstractEventLoop, body: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> None:
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring, body)
    _checks(detector, clock, loop, STALL_S + CHECK_S)
    (stall,) = _stalls(events)
    assert stall.since == 0.0


# -- the default reader, on a made-up /proc ----------------------------------------------------


def _write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def test_the_view_reads_the_programs_threads_then_every_process_below(tmp_path: Path) -> None:
    # Process 100: its probe thread 100 (skipped), a thread with schedstat, one with only stat.
    _write(tmp_path, "100/task/100/schedstat", "9000000000 0 0\n")
    _write(tmp_path, "100/task/100/children", "200 ")
    _write(tmp_path, "100/task/101/schedstat", "2000000000 5 6\n")
    _write(tmp_path, "100/task/101/children", "")
    # utime 150 and stime 50 ticks, after a command name with spaces and parentheses.
    _write(tmp_path, "100/task/102/stat", "102 (a (b) c) S " + "1 " * 10 + "150 50 0 0\n")
    _write(tmp_path, "100/task/102/children", "201\n")
    # Its children (one forked by each thread), and a grandchild (a forkserver's worker).
    _write(tmp_path, "200/task/200/schedstat", "1000000000 0 0\n")
    _write(tmp_path, "200/task/200/children", "300")
    _write(tmp_path, "200/task/205/schedstat", "500000000 0 0\n")
    _write(tmp_path, "201/task/201/schedstat", "0 0 0\n")
    _write(tmp_path, "300/task/300/schedstat", "250000000 0 0\n")

    reading = list(ProgramView(lambda: {100}, proc=str(tmp_path), pid=100).cpu())
    kinds = [key[0] for key, _cpu in reading]  # type: ignore[index]
    assert kinds == sorted(kinds, key=lambda k: k != "thread"), "threads come first"
    ticks = 200 / os.sysconf("SC_CLK_TCK")
    assert dict(reading) == pytest.approx({
        ("thread", 101): 2.0,
        ("thread", 102): ticks,
        ("process", 200): 1.5,
        ("process", 201): 0.0,
        ("process", 300): 0.25,
    })


def test_the_view_reads_first_the_one_its_last_reading_stopped_at(tmp_path: Path) -> None:
    # The detector stops reading at the first thread or process that ran: a busy program's
    # next reading starts there, and costs one file instead of the whole tree.
    for tid in (1, 2, 3):
        _write(tmp_path, f"1/task/{tid}/schedstat", f"{tid}000000000 0 0\n")
    _write(tmp_path, "1/task/1/children", "9")
    _write(tmp_path, "9/task/9/schedstat", "4000000000 0 0\n")
    view = ProgramView(lambda: (), proc=str(tmp_path), pid=1)
    try:
        everything = [key for key, _cpu in view.cpu()]
        assert sorted(everything, key=str) == [("process", 9), ("thread", 1), ("thread", 2),
                                               ("thread", 3)]
        reading = iter(view.cpu())
        next(reading)
        stopped_at, _ = next(reading)  # the consumer stops here: this one ran
        del reading
        assert isinstance(stopped_at, tuple)
        _write(tmp_path, f"1/task/{stopped_at[1]}/schedstat", "7500000000 0 0\n")
        again = list(view.cpu())
        assert again[0] == (stopped_at, 7.5)
        assert sorted((key for key, _cpu in again), key=str) == sorted(everything, key=str)
        # That reading ran to its end: the next one is in the usual order again.
        assert [key for key, _cpu in view.cpu()] == everything
    finally:
        view.close()


# -- threads asleep on the world outside -------------------------------------------------------


@pytest.mark.parametrize("how", ["python moved", "sleeps outside"])
def test_no_stall_while_a_python_thread_moves_or_a_thread_sleeps_on_the_outside(
    loop: asyncio.AbstractEventLoop, how: str
) -> None:
    # ``main`` joins threads that run Python (without a /proc reading), or that sleep in
    # ``time.sleep`` or ``recv``: no CPU moves then, yet they will wake.
    clock, events, ring, program = ManualClock(), list[Event](), _Ring(), _Program()
    detector = _detector(ring, clock, events, program)
    _gate_waiter(loop, ring)

    def working(on: bool) -> None:
        if how == "python moved":
            program.python_moved = on
        else:
            program.sleeps_outside = on

    working(True)
    _checks(detector, clock, loop, 3.0)
    assert _stalls(events) == []
    assert program.readings == (0 if how == "python moved" else program.asked)
    working(False)  # it is over, and nothing else will come
    _checks(detector, clock, loop, 4.0 + CHECK_S)
    (stall,) = _stalls(events)
    assert (stall.t, stall.since) == (4.0 + CHECK_S, 3.0)


def _nap_until(event: threading.Event) -> None:
    while not event.is_set():
        time.sleep(0.01)


def _block_in(target: Callable[[], object], name: str, started: list[threading.Thread]) -> None:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    started.append(thread)


def test_the_view_tells_sleeps_on_the_outside_from_futexes_and_pool_plumbing(
    tmp_path: Path,
) -> None:
    # Real threads, blocked where the kernel would name these waits; the wait names are
    # written out (some kernels hide them), so only the rule is tested, not this kernel.
    release = threading.Event()
    reading, writing = multiprocessing.Pipe(duplex=False)
    threads: list[threading.Thread] = []
    try:
        _block_in(lambda: _nap_until(release), "sleeper", threads)
        _block_in(lambda: multiprocessing.connection.wait([reading]), "plumbing", threads)
        _block_in(lambda: release.wait(), "locked", threads)
        deadline = time.monotonic() + 10
        while not all(sys._current_frames().get(t.ident or -1) for t in threads):
            assert time.monotonic() < deadline, "the threads did not start"
            time.sleep(0.01)
        sleeper, plumbing, locked = (t.native_id or 0 for t in threads)
        pid = os.getpid()
        for tid in (sleeper, plumbing, locked):
            _write(tmp_path, f"{pid}/task/{tid}/wchan", "futex_do_wait")
        view = ProgramView(lambda: set(), proc=str(tmp_path))
        assert not view.waits_outside(), "futexes are the program's own threads"

        _write(tmp_path, f"{pid}/task/{plumbing}/wchan", "do_select")
        assert not view.waits_outside(), "a process pool's plumbing waits on its workers"

        _write(tmp_path, f"{pid}/task/{sleeper}/wchan", "0")
        assert not view.waits_outside(), "where the kernel hides the wait, nothing is told"

        _write(tmp_path, f"{pid}/task/{sleeper}/wchan", "hrtimer_nanosleep")
        assert view.waits_outside()
        skipping = ProgramView(lambda: {sleeper}, proc=str(tmp_path))
        assert not skipping.waits_outside(), "cpviz's own threads are not the program"
    finally:
        release.set()
        writing.send(b"")
        for thread in threads:
            thread.join(timeout=10)
        reading.close()
        writing.close()


def _parked_at(thread: threading.Thread) -> int | None:
    """The line of the thread's own function while it is blocked in a wait, else None."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None or frame.f_code.co_name != "wait":
        return None
    while frame is not None and frame.f_code.co_filename != __file__:
        frame = frame.f_back
    return frame.f_lineno if frame is not None else None


def _wait_parked(thread: threading.Thread, not_at: int | None = None) -> int:
    deadline = time.monotonic() + 10
    while True:
        line = _parked_at(thread)
        if line is not None and line != not_at:
            return line
        assert time.monotonic() < deadline, f"{thread.name} did not block"
        time.sleep(0.01)


def test_the_view_sees_a_python_thread_that_moved_and_none_that_stayed() -> None:
    steps, stepped = queue.Queue[int](), queue.Queue[int]()
    release = threading.Event()

    def stepper() -> None:
        steps.get()
        stepped.put(1)
        steps.get()

    threads: list[threading.Thread] = []
    try:
        _block_in(stepper, "stepper", threads)
        _block_in(lambda: release.wait(), "blocked", threads)
        first = _wait_parked(threads[0])
        _wait_parked(threads[1])
        watched = {t.native_id for t in threads}
        # Only these two are the program here (whatever else runs in the test process).
        view = ProgramView(lambda: {t.native_id or 0 for t in threading.enumerate()} - watched)
        assert not view.moved(), "a first look has nothing to compare with"
        assert not view.moved(), "both stayed where they were"
        steps.put(1)
        stepped.get(timeout=10)
        _wait_parked(threads[0], not_at=first)  # blocked again, one line further
        assert view.moved()
        assert not view.moved()
    finally:
        steps.put(1)
        release.set()
        for thread in threads:
            thread.join(timeout=10)


class _FakeProcess:
    """What psutil tells where there is no /proc: threads with their ids, and children."""

    thread_ids: tuple[int, ...] = ()

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def threads(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=tid, user_time=tid / 4, system_time=0.0)
                for tid in self.thread_ids]

    def children(self, recursive: bool = False) -> list[_FakeProcess]:
        assert recursive, "the whole tree below, not only the direct children"
        return [_FakeProcess(500), _FakeProcess(501)]

    def cpu_times(self) -> SimpleNamespace:
        return SimpleNamespace(user=self.pid / 1000, system=0.5)


@pytest.mark.parametrize("real_ids", [True, False], ids=["real thread ids", "numbered (macOS)"])
def test_without_proc_psutil_reads_the_tree_and_threads_only_by_their_real_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_ids: bool
) -> None:
    me = threading.get_native_id()
    ids = (me, 12, 13) if real_ids else (1, 2, 3)
    monkeypatch.setattr(_FakeProcess, "thread_ids", ids)
    monkeypatch.setattr(psutil, "Process", _FakeProcess)
    view = ProgramView(lambda: {me}, proc=str(tmp_path / "no-proc"))
    threads = {("thread", 12): 3.0, ("thread", 13): 3.25} if real_ids else {}
    assert dict(view.cpu()) == {**threads, ("process", 500): 1.0, ("process", 501): 1.001}
