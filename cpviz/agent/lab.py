"""The lab: where workloads run, on their own event loop in their own OS thread.

It lives in the observed process (:mod:`cpviz.agent.main`), apart from the screen, so nothing the
viewer does can freeze its loop or land in its CPU. It owns the probes on its loop (tracer,
watchdog, no-progress detector), the process pools, and the bookkeeping that turns a run into a
:class:`RunResult`. Every public method is safe to call from any thread and returns at once
(except :meth:`close`, which waits up to its timeout). Tests may also run it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from multiprocessing.pool import Pool
from typing import Any

import anyio

from cpviz.agent.accounting import (
    cpu_between,
    cpu_snapshot,
    ctx_switch_snapshot,
    switches_between,
)
from cpviz.agent.pools import Pools, call_in, end_pool, new_pool, ready_pid
from cpviz.agent.progress import ProgressDetector
from cpviz.agent.tracer import RUN_ID, Tracer
from cpviz.agent.watchdog import Watchdog
from cpviz.engine.affinity import pinned_cpus
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.contract import (
    Measurement,
    Meter,
    RunContext,
    Workload,
    WorkloadError,
    WorkloadInfo,
)
from cpviz.engine.events import (
    Event,
    Metric,
    Phase,
    Role,
    RunEnd,
    RunProgress,
    RunResult,
    RunStart,
)
from cpviz.engine.stream import EventStream

#: How often the lab samples the gauges runs registered (queue depth, latency percentiles).
GAUGE_HZ = 20.0
#: The heartbeat's period while runs are going (freezes are timed to within it) and while the
#: lab is idle, when nothing but cpviz could freeze its loop and a slow beat keeps it cheap.
BUSY_BEAT_S = 0.01
IDLE_BEAT_S = 0.05
#: Name of the task on the lab loop that starts runs (runs start inside a task: see _dispatch).
DISPATCH_TASK = "cpviz:dispatch"

#: Called on the loop thread the moment a run starts (before its clock starts) and ends (after
#: its clock stops), so the viewer can read the observed process's CPU from outside right then.
Mark = Callable[[str, int], None]


def describe_error(exc: BaseException) -> str:
    """One line for a workload's failure: the first real error inside any exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def thread_roles(loop_tid: int | None) -> list[tuple[int, str, Role]]:
    """This process's threads as (native id, name, role): the loop, pool threads, probes, …"""
    main_tid = threading.main_thread().native_id
    out: list[tuple[int, str, Role]] = []
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:
            continue
        name = thread.name
        role: Role
        if tid == loop_tid:
            role = "loop"
        elif name.startswith(("AnyIO worker", "cpviz worker")):
            role = "thread"
        elif name.startswith("cpviz-server"):
            role = "server"
        elif name.startswith("cpviz-") or tid == main_tid:
            role = "probe"
        else:
            role = "other"
        out.append((tid, name, role))
    return out


@dataclass
class _Run:
    run_id: int
    workload: Workload
    mode: str
    params: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: RunResult | None = None
    scope: anyio.CancelScope | None = None
    cancel_requested: bool = False
    #: Jobs handed to the process pool whose results have not come back (cancelling the task
    #: that awaits one does not stop the worker computing it).
    process_jobs: int = 0
    ctx: RunContext | None = None
    #: Gauges the run asked the lab to sample: name -> reading function.
    gauges: dict[str, Callable[[], float]] = field(default_factory=dict)


class Lab:
    """Runs workloads in the background with every probe attached."""

    def __init__(
        self,
        stream: EventStream | None = None,
        *,
        threshold_s: float = 0.1,
        workloads: Sequence[Workload],
        process_workers: int | None = None,
        pin_cores: int | None = None,
        stall_s: float = 1.0,
        mark: Mark | None = None,
        cores: int | None = None,
    ) -> None:
        clock = stream.clock if stream is not None else MonotonicClock()
        if not isinstance(clock, MonotonicClock):
            raise TypeError("the live lab needs a MonotonicClock (probes stamp real time)")
        self.clock = clock
        self.stream = stream if stream is not None else EventStream(clock)
        self.cores = cores or os.cpu_count() or 1
        #: CPUs the lab and its workers are pinned to, or None when not pinned.
        self.pinned: set[int] | None = None
        if pin_cores is not None:
            self.pinned = pinned_cpus(pin_cores)
        #: What this lab offers; passed in, so the lab never imports the catalogue.
        self._workloads = tuple(workloads)
        self.tracer = Tracer(origin=clock.origin, track_runs=True)
        self.watchdog = Watchdog(self.stream.put, clock, threshold_s=threshold_s,
                                 beat_s=IDLE_BEAT_S)
        #: No-progress alarm (C13): a run quiet for ``stall_s`` with nothing to wake it.
        self.progress = ProgressDetector(self.tracer, clock, stall_s=stall_s)
        #: With a mark, the viewer charges each run's CPU from outside; without one (a lab run
        #: in-process, as tests do) the lab reads it itself.
        self._mark = mark
        self.pools = Pools(process_workers or self.cores)
        if self.pinned is not None:
            self.pools.cpus = sorted(self.pinned)
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self._next_run = 1
        self._serial_walls: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_tid: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._shutdown: asyncio.Event | None = None
        self._queue: asyncio.Queue[Callable[[], None]] | None = None
        self._gauge_timer: asyncio.TimerHandle | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Lab:
        """Start the lab thread and its probes; returns once the loop is ready."""
        # Start multiprocessing's resource tracker now, while sys.stderr is still the real one:
        # it hands its child sys.stderr.fileno(), and a process whose stderr is captured may
        # have no usable file descriptor there later, so a pool created then would fail.
        with contextlib.suppress(Exception):
            resource_tracker.ensure_running()
        self.stream.add_feed(self.tracer)
        self._thread = threading.Thread(target=self._thread_main, name="cpviz-lab", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the lab's event loop did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the lab's event loop failed to start: {self._error}")
        return self

    def _thread_main(self) -> None:
        try:
            anyio.run(self._main, backend="asyncio")
        except BaseException as exc:  # surfaced through start() or close()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        if self.pinned is not None:
            # Pid 0 is this thread on Linux; threads and processes it starts inherit the mask.
            os.sched_setaffinity(0, self.pinned)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_tid = threading.get_native_id()
        self._shutdown = asyncio.Event()
        self._queue = asyncio.Queue()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                # Started before the tracer attaches: cpviz's own task is no row of the user's.
                tg.start_soon(self._dispatch, name=DISPATCH_TASK)
                self.tracer.attach(loop)
                self.watchdog.attach(loop)
                self.progress.attach(loop)
                self._ready.set()
                await self._shutdown.wait()
                tg.cancel_scope.cancel()
        finally:
            self.progress.detach()
            self.watchdog.detach()
            self.tracer.detach()

    async def _dispatch(self) -> None:
        """Run what other threads asked for (start a run, change a live parameter), inside a
        task.

        Called from a plain ``call_soon_threadsafe`` callback there is no current task, and
        anyio (through sniffio, where that is installed) then cannot tell which library is
        running: every run hung, and so did a consumer added mid-run. Here everything that may
        touch anyio runs inside this task.
        """
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            try:
                job()
            except Exception as exc:  # a probe must never take the lab down
                print(f"cpviz lab: {describe_error(exc)}", file=sys.stderr)

    def _in_task(self, job: Callable[[], None]) -> None:
        """Have the dispatcher task run ``job`` on the lab loop; safe from any thread."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            raise RuntimeError("the lab is not running")
        with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, job)

    def _start(self, run: _Run) -> None:
        try:
            self._spawn_run(run)
        except Exception as exc:  # the run must still end, and say why
            self._refuse(run, f"failed to start: {describe_error(exc)}")

    def _refuse(self, run: _Run, outcome: str) -> None:
        """End a run that never began, with a result that says why."""
        now = self.clock.now()
        params_t = tuple(sorted(run.params.items()))
        self.tracer.emit(RunStart(now, run.run_id, run.workload.key, run.mode, params_t, 0))
        run.result = RunResult(run.workload.key, run.mode, params_t, 0.0, 0.0, 0.0, None, None,
                               (), outcome)
        self.tracer.emit(RunEnd(now, run.run_id, run.result))
        run.done.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every run, the probes and the pools. Nothing of the lab is left afterwards."""
        if self._closed:
            return
        self._closed = True
        self.pools.closed = True
        self.pools.kill(run_pools=True)
        loop, shutdown = self._loop, self._shutdown
        if loop is not None and shutdown is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(shutdown.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        # Anything a run started while the loop wound down goes too.
        self.pools.kill(run_pools=True)
        self.watchdog.detach()
        self.stream.remove_feed(self.tracer)

    def pin(self, cores: int | None) -> int | None:
        """Pin the lab's threads and workers to the first ``cores`` CPUs, or unpin (None).

        Threads and processes started later inherit the mask from the loop thread, and new
        pools pass it to their workers. Returns the number of cores the lab may now use, or
        None when unpinned. Raises ValueError where the platform has no CPU affinity.
        """
        cpus = pinned_cpus(cores or 1, "pinning")
        if cores is None:
            cpus = set(os.sched_getaffinity(0))
        self.pinned = None if cores is None else cpus
        self.pools.cpus = None if cores is None else sorted(cpus)
        for tid, _name, role in thread_roles(self._loop_tid):
            if role in ("loop", "thread"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, cpus)
        for pid in self.pool_pids():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)
        return None if cores is None else len(cpus)

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the probes need -------------------------------------------------------------------

    @property
    def loop_thread_id(self) -> int | None:
        """Native id of the lab loop's thread."""
        return self._loop_tid

    def pool_pids(self) -> list[int]:
        """This lab's worker processes alive now, in the shared pool and in run pools."""
        return self.pools.pids()

    def tracers(self) -> list[Tracer]:
        """The lab's one traced loop."""
        return [self.tracer]

    def threads(self) -> list[tuple[int, str, Role]]:
        """This process's threads with their roles, for the viewer's sampler."""
        return thread_roles(self._loop_tid)

    async def _in_process(
        self, run: _Run, fn: Callable[..., Any], args: tuple[Any, ...], pool: Pool | None = None
    ) -> Any:
        """Await ``fn(*args)`` in a worker process; results come back via the loop."""
        def returned() -> None:
            run.process_jobs -= 1

        run.process_jobs += 1
        try:
            target = pool if pool is not None else self.pools.shared()
        except BaseException:
            run.process_jobs -= 1
            raise
        return await call_in(target, fn, args, returned)

    # -- controller -----------------------------------------------------------------------------

    def workloads(self) -> Sequence[WorkloadInfo]:
        return [w.info() for w in self._workloads]

    def workload(self, key: str) -> Workload:
        for w in self._workloads:
            if w.key == key:
                return w
        raise WorkloadError(
            f"unknown workload {key!r}; choose one of: "
            + ", ".join(w.key for w in self._workloads)
        )

    def start_run(
        self, workload: Workload, mode: str, params: dict[str, Any], run_id: int | None = None
    ) -> int:
        """Queue a run of an already-validated mode and parameters; returns its run id."""
        if self._closed or self._loop is None or self._queue is None:
            raise RuntimeError("the lab is not running")
        with self._lock:
            if run_id is None:
                run_id = self._next_run
            self._next_run = max(self._next_run, run_id + 1)
            run = _Run(run_id, workload, mode, dict(params))
            self._runs[run_id] = run
        self._in_task(lambda: self._start(run))
        return run_id

    def launch(
        self, key: str, mode: str | None, settings: dict[str, Any], run_id: int | None = None
    ) -> int:
        """Validate ``key``, ``mode`` and ``settings`` (raises WorkloadError) and start a run."""
        workload = self.workload(key)
        mode, params = workload.resolve(mode, settings)
        return self.start_run(workload, mode, params, run_id)

    def stop(self, key: str) -> None:
        with self._lock:
            runs = [r for r in self._runs.values() if r.workload.key == key and not r.done.is_set()]
        for run in runs:
            self.stop_run(run.run_id)

    def stop_run(self, run_id: int) -> None:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.done.is_set() or self._loop is None:
            return

        def cancel() -> None:
            run.cancel_requested = True
            if run.scope is not None:
                run.scope.cancel()

        self._in_task(cancel)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        """Change a live parameter of workload ``key``'s running runs; returns the parsed value.

        Raises WorkloadError for a parameter that is unknown or not live, or a bad value.
        """
        parsed = self.workload(key).live_value(name, value)
        with self._lock:
            runs = [r for r in self._runs.values() if r.workload.key == key and not r.done.is_set()]

        def apply() -> None:
            for run in runs:
                if run.ctx is not None and not run.done.is_set():
                    run.ctx.change(name, parsed)

        if self._loop is not None:
            self._in_task(apply)
        return parsed

    def running(self) -> set[str]:
        with self._lock:
            return {r.workload.key for r in self._runs.values() if not r.done.is_set()}

    def wait(self, run_id: int, timeout: float | None = None) -> RunResult | None:
        """Block until a run ends; its result (without traced counts, which the Model adds)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise KeyError(run_id)
        run.done.wait(timeout)
        return run.result

    # -- on the lab loop ------------------------------------------------------------------------

    def _sample_gauges(self) -> None:
        """Read every active run's gauges; a timer, not a task, so it never shows as a step.

        It runs only while some run has gauges (see :meth:`_want_gauges`): an idle lab must not
        wake its loop twenty times a second for nothing.
        """
        loop = self._loop
        self._gauge_timer = None
        if loop is None or self._closed:
            return
        now = self.clock.now()
        with self._lock:
            runs = [r for r in self._runs.values() if r.gauges and not r.done.is_set()]
        for run in runs:
            self._read_gauges(run, now)
        if runs:
            self._gauge_timer = loop.call_later(1.0 / GAUGE_HZ, self._sample_gauges)

    def _want_gauges(self) -> None:
        """A run registered a gauge (on the loop thread): make sure the timer is going."""
        if self._gauge_timer is None and self._loop is not None and not self._closed:
            self._gauge_timer = self._loop.call_later(1.0 / GAUGE_HZ, self._sample_gauges)

    def _read_gauges(self, run: _Run, now: float) -> None:
        for name, fn in list(run.gauges.items()):
            try:
                value = float(fn())
            except Exception:  # a gauge that cannot be read is simply not drawn
                continue
            self.tracer.emit(Metric(now, run.run_id, name, value))

    def _spawn_run(self, run: _Run) -> None:
        if self._tg is None:
            raise RuntimeError("the lab is not running")
        ctx = contextvars.copy_context()
        ctx.run(RUN_ID.set, run.run_id)
        name = f"{run.workload.key}:{run.mode}"
        ctx.run(self._tg.start_soon, self._execute, run, name=name)  # type: ignore[arg-type]

    async def _execute(self, run: _Run) -> None:
        w = run.workload
        params_t = tuple(sorted(run.params.items()))
        total = w.total(run.mode, run.params)

        def progress(done: int, total_: int) -> None:
            self.tracer.emit(RunProgress(self.clock.now(), run.run_id, done, total_))

        ctx = RunContext(run.mode, run.params, progress, _RunServices(self, run), total)
        run.ctx = ctx
        pids_before = self.pool_pids()
        cpu0: dict[int, float] = {}
        if self._mark is None:
            cpu0 = await anyio.to_thread.run_sync(cpu_snapshot, pids_before)
        else:
            self._mark("start", run.run_id)
        t0 = self.clock.now()
        self.tracer.emit(RunStart(t0, run.run_id, w.key, run.mode, params_t, total))
        self.progress.watch(run.run_id, t0)
        self.watchdog.pace(BUSY_BEAT_S)
        outcome = "completed"
        try:
            with anyio.CancelScope() as scope:
                run.scope = scope
                if run.cancel_requested:
                    scope.cancel()
                try:
                    await w.run(ctx)
                except Exception as exc:
                    outcome = f"failed: {describe_error(exc)}"
            if scope.cancelled_caught:
                outcome = "stopped"
        except BaseException:
            outcome = "stopped"
            raise
        finally:
            t1 = self.clock.now()
            cpu_s = 0.0
            if self._mark is None:
                pids = sorted(set(pids_before) | set(self.pool_pids()))
                cpu_s = cpu_between(cpu0, cpu_snapshot(pids))
            else:
                self._mark("end", run.run_id)
            # Closes a stall still open and adds its figures (stall_detected_s, stall_waiters).
            ctx.extra.update(self.progress.unwatch(run.run_id, t1))
            # One last reading, so even a run shorter than a sampling period ends its series
            # on the figures it finished with.
            self._read_gauges(run, t1)
            run.gauges.clear()
            result = self._result(run, params_t, t0, t1, cpu_s, outcome, ctx)
            run.result = result
            self.tracer.emit(RunEnd(t1, run.run_id, result))
            run.done.set()
            if not self.running():
                self.watchdog.pace(IDLE_BEAT_S)
            if run.process_jobs and not self._closed:
                # Stopped with jobs still in the workers: stopping means the lanes go quiet.
                self.pools.kill()

    def _result(
        self,
        run: _Run,
        params_t: tuple[tuple[str, Any], ...],
        t0: float,
        t1: float,
        cpu_s: float,
        outcome: str,
        ctx: RunContext,
    ) -> RunResult:
        w = run.workload
        wall = max(t1 - t0, 1e-9)
        speedup: float | None = None
        basis: str | None = None
        if outcome == "completed":
            if w.exact_serial is not None:
                exact = w.exact_serial(run.params)
                if exact is not None:
                    speedup, basis = exact[0] / wall, exact[1]
            elif w.serial_mode is not None:
                key = (w.key, params_t)
                if run.mode == w.serial_mode:
                    self._serial_walls[key] = wall
                serial = self._serial_walls.get(key)
                if serial is not None:
                    speedup, basis = serial / wall, f"measured: serial run took {serial:.3f} s"
        extra = dict(ctx.extra)
        if self.pinned is not None:
            extra["pinned_cores"] = len(self.pinned)
        extra["max_loop_lag_s"] = round(self.watchdog.max_lag_between(t0, t1), 6)
        return RunResult(
            workload=w.key,
            mode=run.mode,
            params=params_t,
            wall_s=wall,
            cpu_s=cpu_s,
            parallelism=cpu_s / wall,
            speedup=speedup,
            speedup_basis=basis,
            incidents=self.watchdog.incidents_between(t0, t1),
            outcome=outcome,
            extra=tuple(extra.items()),
        )


class _RunServices:
    """The lab's side of one run's :class:`RunContext`."""

    def __init__(self, lab: Lab, run: _Run) -> None:
        self._lab = lab
        self._run = run
        self.run_id = run.run_id

    def now(self) -> float:
        return self._lab.clock.now()

    def emit(self, event: Event) -> None:
        self._lab.tracer.emit(event)

    async def in_process(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return await self._lab._in_process(self._run, fn, args)

    def gauge(self, name: str, fn: Callable[[], float]) -> None:
        self._run.gauges[name] = fn
        self._lab._want_gauges()

    @contextlib.asynccontextmanager
    async def measure(self) -> AsyncIterator[Meter]:
        lab = self._lab
        meter = Meter()
        pids = lab.pool_pids()
        cpu0, ctx0 = await anyio.to_thread.run_sync(
            lambda: (cpu_snapshot(pids), ctx_switch_snapshot(pids))
        )
        t0 = time.perf_counter()
        yield meter
        wall = time.perf_counter() - t0
        pids = sorted(set(pids) | set(lab.pool_pids()))
        cpu1, ctx1 = await anyio.to_thread.run_sync(
            lambda: (cpu_snapshot(pids), ctx_switch_snapshot(pids))
        )
        meter.result = Measurement(wall, cpu_between(cpu0, cpu1), switches_between(ctx0, ctx1))

    @contextlib.asynccontextmanager
    async def process_pool(self, workers: int, method: str) -> AsyncIterator[_RunPool]:
        lab = self._lab
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start method {method!r} is not available here; choose one of: "
                + ", ".join(multiprocessing.get_all_start_methods())
            )
        t0 = lab.clock.now()
        pool = await anyio.to_thread.run_sync(new_pool, workers, method, lab.pools.cpus)
        if not lab.pools.adopt(pool):
            await anyio.to_thread.run_sync(end_pool, pool, abandon_on_cancel=True)
            raise RuntimeError("the lab is closing")
        handle = _RunPool(lab, self._run, pool, workers, method)
        try:
            # Start-up ends when every worker has answered once: spawned workers must start an
            # interpreter and import cpviz's pool module before they can take work.
            await handle.warm_up()
            t1 = lab.clock.now()
            handle.startup_s = t1 - t0
            self.emit(Phase(t1, self.run_id, "startup", t0, f"{method}, {workers} workers"))
            yield handle
        finally:
            lab.pools.release(pool)
            # Shielded: a stopped run is cancelled, and an unshielded await would raise before
            # the pool is ended, leaving its workers running.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(end_pool, pool)


class _RunPool:
    """A pool made for one run; results come back to the lab loop like the shared pool's."""

    def __init__(self, lab: Lab, run: _Run, pool: Pool, workers: int, method: str) -> None:
        self._lab = lab
        self._run = run
        self.pool = pool
        self.workers = workers
        self.method = method
        self.startup_s = 0.0

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._lab._in_process(self._run, fn, args, pool=self.pool)

    async def warm_up(self) -> None:
        seen: set[int] = set()
        while len(seen) < self.workers:
            async with anyio.create_task_group() as tg:
                for _ in range(self.workers - len(seen)):
                    async def one() -> None:
                        seen.add(await self.call(ready_pid, 0.02))
                    tg.start_soon(one)
