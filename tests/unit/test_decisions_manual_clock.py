"""Freeze decisions (the watchdog) and stall decisions (no-progress detector) on a manual clock.

No threads and no real time: each decision is driven by calling it with the time it should see
(``Watchdog.beat``/``poll``, ``ProgressDetector.check``). Times are binary fractions (1/64 s...) so
every sum is exact and equality is safe.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from cpviz.agent.progress import ProgressDetector
from cpviz.agent.tracer import Tracer
from cpviz.agent.watchdog import SAMPLE_EVERY, Watchdog
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import (
    Event,
    Frame,
    IncidentEnd,
    IncidentStart,
    LoopLag,
    StallEnd,
    StallStart,
)

BEAT = 1 / 64
THRESHOLD = 1 / 8
STALL_S = 1.0


def _of(kind: type, events: Iterable[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def _watchdog(clock: ManualClock, events: list[Event], **kw: float) -> Watchdog:
    """A watchdog armed at the clock's time, never attached: the test is its loop and thread."""
    watchdog = Watchdog(
        events.append,
        clock,
        threshold_s=kw.get("threshold_s", THRESHOLD),
        beat_s=BEAT,
        poll_s=kw.get("poll_s", 1 / 256),
        lag_report_s=kw.get("lag_report_s", 0.25),
    )
    watchdog.arm(clock.now())
    return watchdog


def _beat_on_time(watchdog: Watchdog, clock: ManualClock, until: float) -> None:
    """Beat every ``beat_s`` while the next beat is due no later than ``until``, none late."""
    while clock.now() + watchdog.beat_s <= until:
        clock.advance(watchdog.beat_s)
        watchdog.beat(clock.now())


def _frame(function: str, line: int) -> Frame:
    return Frame(file="/work/app.py", line=line, function=function, code="", origin="user")


class _ScriptedStack(Watchdog):
    """A watchdog whose stack reads are scripted: each names the next culprit, and ``during``
    runs while the stack is being read (what the loop thread may do meanwhile)."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        clock: ManualClock,
        culprits: Iterable[Frame],
        during: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(emit, clock, threshold_s=THRESHOLD, beat_s=BEAT, poll_s=1 / 256)
        self.culprits = iter(culprits)
        self.during = during
        self.arm(clock.now())

    def _capture(self) -> tuple[tuple[Frame, ...], Frame | None, str | None]:
        self.during()
        frame = next(self.culprits, None)
        return ((frame,) if frame else ()), frame, ("time.sleep" if frame else None)


# -- watchdog -------------------------------------------------------------------------------------


def test_no_incident_while_the_silence_is_within_the_threshold() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _watchdog(clock, events)
    clock.set(THRESHOLD)  # exactly the threshold is not past it
    assert watchdog.poll(clock.now()) is None
    watchdog.beat(clock.now())  # late (so lag), but the loop turned: silence starts again
    clock.set(2 * THRESHOLD)
    assert watchdog.poll(clock.now()) is None
    assert _of(IncidentStart, events) == [] and watchdog.history == {}


def test_an_incident_opens_exactly_once_past_the_threshold_since_the_last_beat() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _watchdog(clock, events)
    _beat_on_time(watchdog, clock, 0.5)
    past = 0.5 + THRESHOLD + 1 / 256
    clock.set(past)
    start = watchdog.poll(clock.now())
    assert start is not None
    assert (start.t, start.incident_id, start.since) == (past, 1, 0.5)
    for _ in range(3 * SAMPLE_EVERY):  # still frozen: samples, no second incident
        clock.advance(1 / 256)
        assert watchdog.poll(clock.now()) is None
    assert _of(IncidentStart, events) == [start]
    assert _of(IncidentEnd, events) == []
    assert watchdog.history == {1: (start, None)}


def test_the_next_beat_closes_the_incident_with_its_duration_from_the_last_beat() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _watchdog(clock, events)
    _beat_on_time(watchdog, clock, 0.5)
    clock.set(0.75)
    start = watchdog.poll(clock.now())
    assert start is not None and start.since == 0.5
    clock.set(1.0)
    watchdog.beat(clock.now())
    (end,) = _of(IncidentEnd, events)
    assert (end.t, end.incident_id, end.duration_s) == (1.0, start.incident_id, 0.5)
    assert watchdog.history[start.incident_id] == (start, 0.5)
    # Closed: silence is measured from that beat again, and the next freeze is a new incident.
    clock.set(1.0 + THRESHOLD)
    assert watchdog.poll(clock.now()) is None
    clock.advance(1 / 256)
    again = watchdog.poll(clock.now())
    assert again is not None and (again.incident_id, again.since) == (2, 1.0)


def test_a_freeze_that_ends_during_the_stack_capture_is_reported_and_closed() -> None:
    clock, events = ManualClock(), list[Event]()
    culprit = _frame("crunch", 7)

    def loop_comes_back() -> None:  # the beat lands while the watchdog reads the stack
        clock.set(0.5)
        watchdog.beat(clock.now())
        clock.set(0.5 + 1 / 64)

    watchdog = _ScriptedStack(events.append, clock, [culprit], during=loop_comes_back)
    clock.set(0.25)
    start = watchdog.poll(clock.now())
    assert start is not None
    assert (start.t, start.since, start.culprit) == (0.25, 0.0, culprit)
    assert start.blocking_call == "time.sleep"
    (end,) = _of(IncidentEnd, events)
    # Closed at the time the capture finished; lasted until the beat that ended it.
    assert (end.t, end.incident_id, end.duration_s) == (0.5 + 1 / 64, start.incident_id, 0.5)
    assert [type(e) for e in events if not isinstance(e, LoopLag)] == [IncidentStart, IncidentEnd]
    assert watchdog.history[start.incident_id] == (start, 0.5)
    # Nothing was left open: the next polls measure from that beat.
    assert watchdog.poll(clock.now()) is None
    assert watchdog.max_lag_between(0.75, 0.75) == 0.0


def test_a_long_freeze_is_sampled_and_named_by_where_most_samples_saw_it() -> None:
    clock, events = ManualClock(), list[Event]()
    brief, long = _frame("brief", 3), _frame("long", 9)
    watchdog = _ScriptedStack(events.append, clock, [brief] + [long] * 10)
    clock.set(0.25)
    assert watchdog.poll(clock.now()) is not None  # first look: brief
    for _ in range(3 * SAMPLE_EVERY):  # then a sample every SAMPLE_EVERY polls: long, thrice
        clock.advance(1 / 256)
        watchdog.poll(clock.now())
    watchdog.beat(clock.now())
    (end,) = _of(IncidentEnd, events)
    assert end.samples == 4
    assert end.culprit == long and end.blocking_call == "time.sleep"


def test_loop_lag_is_reported_every_lag_report_s_with_the_worst_lag_since() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _watchdog(clock, events, lag_report_s=0.25)
    _beat_on_time(watchdog, clock, 4 / 64)
    clock.advance(BEAT + 2 / 64)  # one beat 2/64 s late
    watchdog.beat(clock.now())
    _beat_on_time(watchdog, clock, 0.25 - BEAT)
    assert _of(LoopLag, events) == []  # nothing before lag_report_s has passed
    _beat_on_time(watchdog, clock, 0.5)
    # The worst lag is reset after each report: the second window was all on time.
    assert _of(LoopLag, events) == [LoopLag(0.25, 2 / 64), LoopLag(0.5, 0.0)]


def test_max_lag_and_incidents_between_answer_for_their_window_only() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _watchdog(clock, events)
    _beat_on_time(watchdog, clock, 0.5)
    clock.advance(BEAT + 1 / 16)  # late by 1/16 at 37/64
    watchdog.beat(clock.now())
    _beat_on_time(watchdog, clock, 1.0)
    clock.advance(BEAT + 1 / 32)  # late by 1/32 at 67/64
    watchdog.beat(clock.now())
    _beat_on_time(watchdog, clock, 2.0)
    assert watchdog.max_lag_between(0.0, 0.75) == 1 / 16
    assert watchdog.max_lag_between(0.75, 1.5) == 1 / 32
    assert watchdog.max_lag_between(1.5, 2.0) == 0.0
    assert watchdog.max_lag_between(0.0, 2.0) == 1 / 16

    # A freeze still under way counts as lag so far, up to the window's end.
    clock.set(2.25)
    assert watchdog.poll(clock.now()) is not None
    assert watchdog.max_lag_between(1.5, 2.125) == 0.125
    assert watchdog.max_lag_between(1.5, 3.0) == 0.25
    clock.set(2.5)
    watchdog.beat(clock.now())  # ends it: 0.5 s from the beat at 2.0

    assert watchdog.incidents_between(0.0, 1.5) == ()
    (inside,) = watchdog.incidents_between(1.5, 2.0)
    assert (inside.start_s, inside.duration_s) == (0.5, 0.5)
    (overlap,) = watchdog.incidents_between(2.25, 3.0)
    assert overlap.start_s == 0.0  # began before the window: clipped to its start
    assert watchdog.incidents_between(2.75, 3.0) == ()

    # One still open lasts, so far, until the clock's now.
    clock.set(3.0)
    assert watchdog.poll(clock.now()) is not None
    (open_,) = watchdog.incidents_between(2.75, 3.5)
    assert (open_.start_s, open_.duration_s) == (0.0, 0.5)
    clock.set(3.25)
    (open_,) = watchdog.incidents_between(2.75, 3.5)
    assert open_.duration_s == 0.75


def test_the_watch_loop_sleeps_until_the_threshold_then_polls_at_the_clocks_time() -> None:
    clock, events = ManualClock(), list[Event]()
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds)
        if len(naps) == 10:
            watchdog.detach()  # never attached: only stops the loop

    watchdog = Watchdog(events.append, clock, threshold_s=THRESHOLD, poll_s=3 / 64, sleep=sleep)
    watchdog.arm(clock.now())
    watchdog._watch()  # the thread's body, run here: no thread, no real time
    # Nothing to see before the last beat is a threshold (8/64 s) old: one nap until just past
    # it (half a poll's margin), then poll_s naps while the freeze is open.
    assert naps == [9.5 / 64] + [3 / 64] * 9
    (start,) = _of(IncidentStart, events)
    assert (start.t, start.since) == (9.5 / 64, 0.0)
    # The heartbeat callback takes its time from the clock too.
    watchdog._beat()
    (end,) = _of(IncidentEnd, events)
    assert (end.t, end.duration_s) == (36.5 / 64, 36.5 / 64)


# -- no-progress detector -------------------------------------------------------------------------


class _FakeTracer:
    """What the detector reads of a tracer: a ring of (task id, ready, start, end) records, the
    counts of records written and dropped, and which run each task belongs to."""

    capacity = 8
    origin = 0.0

    def __init__(self) -> None:
        self._buf = array("d", bytes(8 * 4 * self.capacity))
        self.written = 0
        self.dropped_total = 0
        self.run_of: dict[int, int] = {}

    def step(self, task: asyncio.Task[Any], end: float) -> None:
        """Record one step of ``task`` that ended at ``end`` (session clock)."""
        i = (self.written & (self.capacity - 1)) * 4
        self._buf[i : i + 4] = array("d", [id(task), end, end, end])
        self.written += 1


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """Let every ready task run up to its next await (no timer is due: nothing sleeps)."""
    loop.run_until_complete(asyncio.sleep(0))


def _spawn(
    loop: asyncio.AbstractEventLoop,
    tracer: _FakeTracer,
    coro: Coroutine[Any, Any, None],
    name: str,
    run_id: int = 1,
) -> asyncio.Task[None]:
    task = loop.create_task(coro, name=name)
    tracer.run_of[id(task)] = run_id
    _settle(loop)
    return task


def _detector(tracer: _FakeTracer, clock: ManualClock, events: list[Event]) -> ProgressDetector:
    return ProgressDetector(cast(Tracer, tracer), clock, stall_s=STALL_S, emit=events.append)


def _check_at(detector: ProgressDetector, clock: ManualClock, t: float,
              loop: asyncio.AbstractEventLoop) -> None:
    clock.set(t)
    detector.check(clock.now(), loop)


def _stuck_on_a_gate(
    loop: asyncio.AbstractEventLoop, tracer: _FakeTracer
) -> asyncio.Task[None]:
    """A run-1 task waiting on an Event nobody will set."""
    gate = asyncio.Event()

    async def waiting() -> None:
        await gate.wait()

    return _spawn(loop, tracer, waiting(), "waiting")


def test_a_stall_opens_once_after_stall_s_without_progress(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock, events, tracer = ManualClock(), list[Event](), _FakeTracer()
    detector = _detector(tracer, clock, events)
    _stuck_on_a_gate(loop, tracer)
    detector.watch(1, since=0.0)
    for t in (0.5, STALL_S):  # quiet, but not longer than stall_s yet
        _check_at(detector, clock, t, loop)
    assert events == []
    _check_at(detector, clock, 1.25, loop)
    (stall,) = events
    assert isinstance(stall, StallStart)
    assert (stall.t, stall.run_id, stall.stall_id, stall.since) == (1.25, 1, 1, 0.0)
    (waiter,) = stall.waiters
    assert (waiter.kind, waiter.name, waiter.waits_on) == ("task", "waiting", "gate")
    assert waiter.frame is not None and waiter.frame.function == "waiting"
    _check_at(detector, clock, 2.5, loop)
    assert len(events) == 1, "a stall already open is not opened again"
    assert detector.unwatch(1, 3.0)["stall_detected_s"] == 1.25
    assert events[-1] == StallEnd(3.0, 1, 1)


def test_a_step_keeps_the_run_alive_and_the_stall_counts_from_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock, events, tracer = ManualClock(), list[Event](), _FakeTracer()
    detector = _detector(tracer, clock, events)
    task = _stuck_on_a_gate(loop, tracer)
    detector.watch(1, since=0.0)
    _check_at(detector, clock, 0.5, loop)
    tracer.step(task, end=0.75)
    _check_at(detector, clock, 1.25, loop)
    _check_at(detector, clock, 1.75, loop)  # 1.0 s after the step: not longer than stall_s
    assert events == []
    _check_at(detector, clock, 1.875, loop)
    (stall,) = _of(StallStart, events)
    assert (stall.t, stall.since) == (1.875, 0.75)


def test_a_step_after_a_stall_closes_it(loop: asyncio.AbstractEventLoop) -> None:
    clock, events, tracer = ManualClock(), list[Event](), _FakeTracer()
    detector = _detector(tracer, clock, events)
    task = _stuck_on_a_gate(loop, tracer)
    detector.watch(1, since=0.0)
    _check_at(detector, clock, 1.25, loop)
    tracer.step(task, end=1.5)
    _check_at(detector, clock, 1.75, loop)
    assert events[1:] == [StallEnd(1.75, 1, 1)]
    _check_at(detector, clock, 2.5, loop)
    assert len(events) == 2
    _check_at(detector, clock, 2.75, loop)  # quiet again for longer than stall_s: a new stall
    (_, again) = _of(StallStart, events)
    assert (again.stall_id, again.since) == (2, 1.5)


def test_a_wake_up_coming_is_no_stall_and_counts_as_alive(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock, events, tracer = ManualClock(), list[Event](), _FakeTracer()
    detector = _detector(tracer, clock, events)
    _stuck_on_a_gate(loop, tracer)
    sleeper = _spawn(loop, tracer, asyncio.sleep(3600), "sleeper")
    detector.watch(1, since=0.0)
    _check_at(detector, clock, 5.0, loop)
    assert events == []
    sleeper.cancel()  # no wake-up coming any more; the cancellation's step is not recorded
    _settle(loop)
    _check_at(detector, clock, 6.0, loop)
    assert events == []
    _check_at(detector, clock, 6.25, loop)
    (stall,) = _of(StallStart, events)
    assert stall.since == 5.0  # the last check that saw the sleeper


def test_dropped_records_count_as_progress(loop: asyncio.AbstractEventLoop) -> None:
    clock, events, tracer = ManualClock(), list[Event](), _FakeTracer()
    detector = _detector(tracer, clock, events)
    _stuck_on_a_gate(loop, tracer)
    detector.watch(1, since=0.0)
    tracer.dropped_total += 1
    _check_at(detector, clock, 1.25, loop)
    _check_at(detector, clock, 2.25, loop)
    assert events == []
    _check_at(detector, clock, 2.5, loop)
    (stall,) = _of(StallStart, events)
    assert stall.since == 1.25


def test_a_freeze_nobody_saw_while_it_lasted_is_reported_from_the_beat_that_ended_it() -> None:
    """A real-time hog on the core the loop and the watchdog share starves both: the late beat
    proves the freeze, and the next poll reports it, with no stack (none could be seen)."""
    clock, events = ManualClock(), list[Event]()
    watchdog = Watchdog(events.append, clock, threshold_s=THRESHOLD)
    watchdog.arm(0.0)
    clock.set(40 / 64)  # the watchdog never ran in between
    watchdog.beat(clock.now())
    assert _of(IncidentStart, events) == []
    clock.set(41 / 64)
    start = watchdog.poll(clock.now())
    assert start is not None and (start.since, start.culprit) == (0.0, None)
    (end,) = _of(IncidentEnd, events)
    assert (end.incident_id, end.duration_s) == (start.incident_id, 40 / 64)
    assert watchdog.poll(clock.now()) is None  # reported once


def test_a_freeze_the_watchdog_saw_is_not_reported_again_by_its_late_beat() -> None:
    clock, events = ManualClock(), list[Event]()
    watchdog = _ScriptedStack(events.append, clock, [_frame("crunch", 7)])
    clock.set(0.25)
    assert watchdog.poll(clock.now()) is not None
    clock.set(0.5)
    watchdog.beat(clock.now())
    clock.set(0.5 + 1 / 64)
    assert watchdog.poll(clock.now()) is None
    assert len(_of(IncidentStart, events)) == 1 and len(_of(IncidentEnd, events)) == 1
