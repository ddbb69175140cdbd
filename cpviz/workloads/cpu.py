"""CPU-bound jobs serially, in threads, in processes, and on the loop (C1, C4–C7).

Also the workers the other CPU workloads (oversubscribe, amdahl) share: :func:`open_team` gives
``n`` fresh threads or processes whose start-up is measured apart from the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from cpviz.engine.contract import (
    Measurement,
    Param,
    ProcessPoolHandle,
    RunContext,
    Workload,
    WorkloadError,
)
from cpviz.engine.handoff import threadsafe_future
from cpviz.workloads._jobs import KINDS, job

#: Process start methods this platform offers, in the order cpviz lists them.
START_METHODS = tuple(
    m for m in ("spawn", "fork", "forkserver") if m in multiprocessing.get_all_start_methods()
)

EXPLANATION = (
    "J jobs of one kind: pure-Python arithmetic (kind=python), SHA-256 hashing (hashlib) or zlib "
    "compression (zlib). In threads, python jobs take turns holding the GIL: the load may hop "
    "between lanes but adds up to about one core (parallelism ≈ 1), while hashlib and zlib let "
    "go of the GIL inside C, so their threads fill every lane. processes: each worker has its "
    "own interpreter and GIL, so every kind fills the lanes; with fresh=true the pool is "
    "started for this run and its start-up shows as its own phase, so spawn, fork and "
    "forkserver (start=…) can be compared with the start-up of fresh threads. loop: the jobs "
    "run on the event loop itself, which freezes, and the alarm names the line."
)


def usable_cores() -> int:
    """Cores this thread may run on; when the lab is pinned, its mask shows up here."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# -- workers ------------------------------------------------------------------------------------


_Item = tuple[Callable[..., Any], tuple[Any, ...], Callable[[bool, Any], None]]


class ThreadCrew:
    """``size`` fresh threads that run jobs handed to them from the event loop.

    anyio's worker threads are reused from run to run, so their start-up cannot be seen; a crew
    starts its own, so thread start-up can be measured beside a process pool's. Jobs get the
    crew's ``stop`` flag, so a stopped run's threads finish within a moment.
    """

    def __init__(self, size: int, name: str = "cpviz worker") -> None:
        self.size = size
        self.name = name
        #: Set when the crew closes; jobs look at it between chunks of work.
        self.stop = threading.Event()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start every thread; blocks until each one runs (call it off the loop)."""
        for i in range(self.size):
            thread = threading.Thread(target=self._serve, name=f"{self.name} {i}", daemon=True)
            thread.start()  # returns once the new thread is running
            self._threads.append(thread)

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args, deliver = item
            if self.stop.is_set():
                continue  # the run is over: drop what it queued
            try:
                value = fn(*args)
            except Exception as exc:
                deliver(False, exc)
            else:
                deliver(True, value)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on one of the crew's threads and await its result."""
        future, deliver = threadsafe_future(asyncio.get_running_loop())
        self._queue.put((fn, args, deliver))
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the crew and wait for its threads: queued jobs are dropped, running ones stop."""
        self.stop.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)


class Team(Protocol):
    """Workers that run CPU jobs for one run."""

    #: How many threads or processes run jobs at once.
    workers: int
    #: Measured start-up of these workers, or None when they were already running.
    startup_s: float | None

    async def run(self, kind: str, work: int) -> None:
        """Run one job of ``work`` units of ``kind`` on one of the workers."""
        ...


class _Warm:
    """The lab's shared process pool, or anyio's reused threads: nothing to start."""

    startup_s: float | None = None

    def __init__(self, mode: str, ctx: RunContext, workers: int) -> None:
        self._mode = mode
        self._ctx = ctx
        self.workers = workers
        self.stop = threading.Event()
        self._limiter = anyio.CapacityLimiter(workers)

    async def run(self, kind: str, work: int) -> None:
        if self._mode == "processes":
            await self._ctx.in_process(job, kind, work)
        else:
            # Abandoned on cancel: the thread sees ``stop`` (set when the team closes) and ends.
            await anyio.to_thread.run_sync(
                job, kind, work, self.stop, limiter=self._limiter, abandon_on_cancel=True
            )


class _Crew:
    def __init__(self, crew: ThreadCrew, startup_s: float) -> None:
        self._crew = crew
        self.workers = crew.size
        self.startup_s: float | None = startup_s

    async def run(self, kind: str, work: int) -> None:
        await self._crew.call(job, kind, work, self._crew.stop)


class _Pool:
    def __init__(self, pool: ProcessPoolHandle) -> None:
        self._pool = pool
        self.workers = pool.workers
        self.startup_s: float | None = pool.startup_s

    async def run(self, kind: str, work: int) -> None:
        await self._pool.call(job, kind, work)


@contextlib.asynccontextmanager
async def open_team(
    ctx: RunContext, mode: str, workers: int, *, start: str = "spawn", fresh: bool = True
) -> AsyncIterator[Team]:
    """``workers`` threads (mode ``threads``) or processes (``processes``) for one run.

    Fresh workers are started here and their start-up is a ``startup`` phase of the run: the
    lab times a process pool until every worker answered; a thread crew's start is measured
    with ``ctx.measure``. Everything started is stopped on the way out, also when cancelled.
    """
    if not fresh:
        warm = _Warm(mode, ctx, workers)
        try:
            yield warm
        finally:
            warm.stop.set()
    elif mode == "processes":
        if start == "fork":
            _quiet_fork_warning()
        _forkservers.enter(start)
        try:
            stack = contextlib.AsyncExitStack()
            pool = await stack.enter_async_context(ctx.process_pool(workers, start))
            try:
                yield _Pool(pool)
            finally:
                # Shielded: once the run is stopped, the pool's own clean-up would otherwise
                # be cancelled at its first await and leave the workers computing.
                with anyio.CancelScope(shield=True):
                    await stack.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                await _forkservers.leave(start)
    else:
        crew = ThreadCrew(workers)
        try:
            t0 = ctx.now()
            async with ctx.measure() as meter:
                await anyio.to_thread.run_sync(crew.start)
                t1 = ctx.now()
            ctx.phase("startup", t0, t1, f"threads, {workers} workers")
            yield _Crew(crew, measured(meter.result).wall_s)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(crew.close)


def measured(result: Measurement | None) -> Measurement:
    """A ``measure()`` block's result, which the lab fills in when the block ends."""
    if result is None:  # only a broken fake lab would leave it out
        raise RuntimeError("the lab did not measure the block")
    return result


def _quiet_fork_warning() -> None:
    # Python 3.12+ warns that forking a process with threads may deadlock the child. The lab
    # always has threads (its loop, the probes), and fork is offered on purpose, to compare its
    # start-up with spawn's; the children only run cpviz's tiny job module. Silence exactly
    # that warning (adding the same filter again replaces it, so this does not pile up).
    warnings.filterwarnings(
        "ignore",
        message=r"This process \(pid=\d+\) is multi-threaded, use of fork\(\)",
        category=DeprecationWarning,
    )


class _ForkServers:
    """Stops multiprocessing's fork server once no run uses it, so no process outlives a run.

    The server is started by the first forkserver pool and would otherwise stay for the life
    of cpviz. It is one per process, shared by every lab in it, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.users = 0

    def enter(self, start: str) -> None:
        if start == "forkserver":
            with self._lock:
                self.users += 1

    async def leave(self, start: str) -> None:
        if start == "forkserver":
            await anyio.to_thread.run_sync(self._leave)

    def _leave(self) -> None:
        # Under the lock, so a run that enters meanwhile either keeps the server or restarts it.
        with self._lock:
            self.users -= 1
            if self.users == 0:
                _stop_forkserver()


def _stop_forkserver() -> None:
    try:
        from multiprocessing import forkserver
    except ImportError:  # no fork server on this platform
        return
    # A private hook (there is no public one); if a Python drops it, the server merely stays.
    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


_forkservers = _ForkServers()


# -- the workload -------------------------------------------------------------------------------


async def batch(ctx: RunContext, team: Team, kind: str, work: int, jobs: int, label: str) -> None:
    """Run ``jobs`` jobs at once on ``team`` (its workers take them as they come free)."""

    async def one() -> None:
        await team.run(kind, work)
        ctx.advance()

    async with anyio.create_task_group() as tg:
        for i in range(jobs):
            tg.start_soon(one, name=f"{label}job {i}")


def _record(ctx: RunContext, prefix: str, m: Measurement | None) -> None:
    """Put a measured stretch into the run's figures."""
    r = measured(m)
    ctx.extra[f"{prefix}_wall_s"] = round(r.wall_s, 6)
    ctx.extra[f"{prefix}_cpu_s"] = round(r.cpu_s, 6)
    ctx.extra[f"{prefix}_parallelism"] = round(r.parallelism, 4)


async def _run(ctx: RunContext) -> None:
    jobs: int = ctx.params["jobs"]
    work: int = ctx.params["work"]
    kind: str = ctx.params["kind"]
    mode = ctx.mode
    if mode == "loop":
        for _ in range(jobs):
            job(kind, work)  # deliberately on the loop: this is what freezes it
            ctx.advance()
            await anyio.lowlevel.checkpoint()
        return
    if mode == "serial":
        stop = threading.Event()
        try:
            async with ctx.measure() as m:
                for _ in range(jobs):
                    await anyio.to_thread.run_sync(job, kind, work, stop, abandon_on_cancel=True)
                    ctx.advance()
        finally:
            stop.set()
        _record(ctx, "work", m.result)
        return
    fresh: bool = ctx.params["fresh"]
    start: str = ctx.params["start"]
    # Threads: one per job, all at once. Processes: no more than the cores they can use, as
    # more would only add start-up (the lab's warm pool has one per core already).
    workers = jobs if mode == "threads" else min(jobs, usable_cores())
    async with open_team(ctx, mode, workers, start=start, fresh=fresh) as team:
        if team.startup_s is not None:
            ctx.extra["workers"] = team.workers
            if mode == "processes":
                ctx.extra["start"] = start
            ctx.extra["startup_s"] = round(team.startup_s, 6)
            ctx.extra["startup_per_worker_s"] = round(team.startup_s / team.workers, 6)
        async with ctx.measure() as m:
            await batch(ctx, team, kind, work, jobs, "")
    _record(ctx, "work", m.result)


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return int(params["jobs"])


def _check(mode: str, params: Mapping[str, Any]) -> None:
    if mode == "processes" and not params["fresh"] and params["start"] != "spawn":
        raise WorkloadError(
            f"start={params['start']} needs fresh=true: without it the jobs go to the lab's "
            "shared pool, which is started once with spawn"
        )


def kind_param(default: str = "python") -> Param:
    """The job-kind choice, shared by the CPU workloads."""
    return Param(
        "kind", str, default,
        help="python holds the GIL; hashlib and zlib release it while they work",
        choices=KINDS,
    )


WORKLOAD = Workload(
    key="cpu",
    title="CPU-bound jobs",
    modes=("threads", "processes", "serial", "loop"),
    params=(
        Param("jobs", int, 8, 1, 256, "number of jobs"),
        Param("work", int, 3_000_000, 1_000, 200_000_000,
              "work per job: loop iterations, or 128 bytes hashed / 2 bytes compressed each"),
        kind_param(),
        Param("start", str, "spawn",
              help="how processes mode starts its fresh workers", choices=START_METHODS),
        Param("fresh", bool, True, help="start new workers for this run (timed), else reuse "
              "warm ones: the lab's process pool, anyio's threads"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
    serial_mode="serial",
    check=_check,
)
