"""A shared counter bumped through a read–modify–write window, with and without a lock (C12)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import anyio

from cpviz.engine.contract import Param, RunContext, Workload

EXPLANATION = (
    "Workers each add 1 to one shared counter, increments times, by reading it, pausing for "
    "window_us, then writing back what they read plus one. unlocked: threads; the pause lets "
    "the GIL pass to another thread, which reads the same old value, so two increments "
    "become one: 'lost so far' climbs and the counter ends well short. locked: a threading.Lock "
    "around the read–pause–write makes the counter exact, but the threads queue for it; the "
    "lock wait is measured around each acquire and is most of their time. async-unlocked and "
    "async-locked do the same with coroutines on one loop: the race needs the await in the "
    "window (a suspension point), and an anyio.Lock fixes it the same way."
)

MODES = ("unlocked", "locked", "async-unlocked", "async-locked")

#: How often the progress bar catches up with the workers' tallies.
PROGRESS_S = 0.1


class _Shared:
    """The counter and each worker's own tallies (a worker writes only its own slot)."""

    def __init__(self, workers: int) -> None:
        #: The shared counter: a plain attribute, so the read and the write are separate steps.
        self.value = 0
        #: Increments each worker has finished (written back).
        self.done = [0] * workers
        #: Seconds each worker spent between asking for the lock and getting it.
        self.waited = [0.0] * workers
        self.reported = 0

    def expected(self) -> int:
        return sum(self.done)

    def lost_so_far(self) -> int:
        """Live reading taken without pausing the workers.

        The tallies are read before the counter. Each tally follows its write, so with the lock
        (where the counter only grows) the reading can never show a loss that did not happen.
        Without the lock a write landing between the two reads can hide a loss for a moment;
        that transient is shown as 0, never as a negative loss.
        """
        expected = self.expected()
        return max(0, expected - self.value)

    def lock_wait_s(self) -> float:
        return sum(self.waited)


class _Gate:
    """Holds every thread until all have started, so they contend from the first increment.

    Without it the first thread could be done before the last one had started, and nothing
    would race. Waiting threads poll ``stop`` so a stopped run never leaves one parked here.
    """

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._arrived = 0
        self._lock = threading.Lock()
        self._open = threading.Event()

    def wait(self, stop: threading.Event) -> bool:
        with self._lock:
            self._arrived += 1
            if self._arrived >= self._parties:
                self._open.set()
        while not self._open.wait(0.05):
            if stop.is_set():
                return False
        return not stop.is_set()


def _bump_in_thread(
    me: int,
    shared: _Shared,
    lock: threading.Lock | None,
    gate: _Gate,
    stop: threading.Event,
    increments: int,
    window_s: float,
) -> None:
    """One thread's increments; checks ``stop`` between them so a stopped run ends quickly."""
    if not gate.wait(stop):
        return
    for _ in range(increments):
        if stop.is_set():
            return
        if lock is None:
            value = shared.value
            time.sleep(window_s)  # releases the GIL: another thread can read the same value
            shared.value = value + 1
            shared.done[me] += 1
        else:
            asked = time.perf_counter()
            lock.acquire()
            shared.waited[me] += time.perf_counter() - asked
            try:
                value = shared.value
                time.sleep(window_s)
                shared.value = value + 1
                shared.done[me] += 1
            finally:
                lock.release()


async def _bump_on_loop(
    me: int, shared: _Shared, lock: anyio.Lock | None, increments: int, window_s: float
) -> None:
    """One coroutine's increments; the await in the window is where another one gets in."""
    for _ in range(increments):
        if lock is None:
            value = shared.value
            await anyio.sleep(window_s)
            shared.value = value + 1
            shared.done[me] += 1
        else:
            asked = time.perf_counter()
            await lock.acquire()
            shared.waited[me] += time.perf_counter() - asked
            try:
                value = shared.value
                await anyio.sleep(window_s)
                shared.value = value + 1
                shared.done[me] += 1
            finally:
                lock.release()


def _report(ctx: RunContext, shared: _Shared) -> None:
    done = shared.expected()
    if done > shared.reported:
        ctx.advance(done - shared.reported)
        shared.reported = done


async def _progress(ctx: RunContext, shared: _Shared, stop: threading.Event) -> None:
    """Moves the progress bar; when cancelled (the run stopped), tells the threads to stop."""
    try:
        while True:
            await anyio.sleep(PROGRESS_S)
            _report(ctx, shared)
    finally:
        stop.set()


async def _run(ctx: RunContext) -> None:
    p = ctx.params
    workers: int = p["threads"]
    increments: int = p["increments"]
    window_s = p["window_us"] / 1e6
    locked = ctx.mode in ("locked", "async-locked")
    shared = _Shared(workers)
    stop = threading.Event()
    ctx.gauge("counter", lambda: shared.value)
    ctx.gauge("expected so far", shared.expected)
    ctx.gauge("lost so far", shared.lost_so_far)
    if locked:
        ctx.gauge("lock wait s", shared.lock_wait_s)
    try:
        async with ctx.measure() as meter, anyio.create_task_group() as outer:
            outer.start_soon(_progress, ctx, shared, stop, name="progress")
            async with anyio.create_task_group() as tg:
                if ctx.mode.startswith("async"):
                    alock = anyio.Lock() if locked else None
                    for i in range(workers):
                        tg.start_soon(_bump_on_loop, i, shared, alock, increments, window_s,
                                      name=f"coroutine {i}")
                else:
                    tlock = threading.Lock() if locked else None
                    gate = _Gate(workers)
                    limiter = anyio.CapacityLimiter(workers)
                    for i in range(workers):
                        tg.start_soon(_in_thread, i, shared, tlock, gate, stop, increments,
                                      window_s, limiter, name=f"thread {i}")
            outer.cancel_scope.cancel()  # every worker is done: end the progress task
        result = meter.result
        if result is not None and result.wall_s > 0:
            ctx.extra["increments_per_s"] = round(shared.expected() / result.wall_s, 1)
            if locked:
                ctx.extra["lock_wait_pct"] = round(
                    100.0 * shared.lock_wait_s() / (workers * result.wall_s), 1
                )
    finally:
        stop.set()
        _report(ctx, shared)
        expected = shared.expected()
        ctx.extra.update(
            planned=workers * increments,
            expected=expected,
            final=shared.value,
            lost_updates=expected - shared.value,
            lost_pct=round(100.0 * (expected - shared.value) / expected, 2) if expected else 0.0,
        )
        if locked:
            ctx.extra["lock_wait_s"] = round(shared.lock_wait_s(), 6)


async def _in_thread(
    me: int,
    shared: _Shared,
    lock: threading.Lock | None,
    gate: _Gate,
    stop: threading.Event,
    increments: int,
    window_s: float,
    limiter: anyio.CapacityLimiter,
) -> None:
    # Not abandoned on cancel: a stopped run waits here until the thread has seen ``stop``.
    await anyio.to_thread.run_sync(
        _bump_in_thread, me, shared, lock, gate, stop, increments, window_s, limiter=limiter
    )


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return int(params["threads"]) * int(params["increments"])


WORKLOAD = Workload(
    key="shared-state",
    title="Shared counter: race and lock",
    modes=MODES,
    params=(
        Param("threads", int, 8, 2, 64, "workers bumping the counter (threads, or coroutines "
              "in the async modes)"),
        Param("increments", int, 5_000, 1, 10_000_000, "increments each worker makes"),
        Param("window_us", float, 0.0, 0.0, 10_000.0, "pause between reading the counter and "
              "writing it back (µs); 0 still yields once, which is enough to race"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
)
