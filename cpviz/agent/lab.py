"""The lab: where workloads run, on their own event loop in their own OS thread.

The UI never shares this loop, so when a workload freezes it the UI stays live and can show the
freeze while it happens. The lab owns the probes (tracer and watchdog on its loop, sampler on its
own thread), the process pool, and the bookkeeping that turns a run into a :class:`RunResult`.
Every public method is safe to call from any thread and returns at once (except :meth:`close`,
which waits up to its timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from multiprocessing.pool import Pool
from typing import Any

import anyio
import psutil

from cpviz.agent.progress import ProgressDetector
from cpviz.agent.tracer import RUN_ID, Tracer
from cpviz.agent.watchdog import Watchdog
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.contract import (
    Measurement,
    Meter,
    RunContext,
    Workload,
    WorkloadError,
    WorkloadInfo,
)
from cpviz.engine.events import Event, Metric, Phase, RunEnd, RunProgress, RunResult, RunStart
from cpviz.engine.handoff import threadsafe_future
from cpviz.engine.sampler import CoreSampler, Watched, own_threads
from cpviz.engine.stream import EventStream
from cpviz.workloads._jobs import hello, worker_init

#: How often the lab samples the gauges runs registered (queue depth, latency percentiles).
GAUGE_HZ = 20.0


def cpu_snapshot(pool_pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds so far: this process (key 0, reaped children included) and each live worker."""
    me = psutil.Process()
    times = me.cpu_times()
    out = {0: times.user + times.system + times.children_user + times.children_system}
    for pid in pool_pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(max(0.0, v - before.get(pid, 0.0)) for pid, v in after.items())


def ctx_switch_snapshot(pool_pids: Sequence[int]) -> dict[int, int]:
    """Context switches so far: this process (key 0) and each live worker."""
    out = {0: sum(psutil.Process().num_ctx_switches())}
    for pid in pool_pids:
        with contextlib.suppress(psutil.Error):
            out[pid] = sum(psutil.Process(pid).num_ctx_switches())
    return out


def affinity_supported() -> bool:
    """Whether this platform lets cpviz pin the lab to a set of cores."""
    return hasattr(os, "sched_setaffinity")


def pinned_cpus(cores: int) -> set[int]:
    """The first ``cores`` CPUs this process may run on (raises ValueError when too many)."""
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise ValueError(f"--cores must be from 1 to {len(allowed)}, got {cores}")
    return set(allowed[:cores])


def describe_error(exc: BaseException) -> str:
    """One line for a workload's failure: the first real error inside any exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        sample_hz: float = 10.0,
        workloads: Sequence[Workload] | None = None,
        process_workers: int | None = None,
        sample: bool = True,
        pin_cores: int | None = None,
        stall_s: float = 1.0,
    ) -> None:
        clock = stream.clock if stream is not None else MonotonicClock()
        if not isinstance(clock, MonotonicClock):
            raise TypeError("the live lab needs a MonotonicClock (probes stamp real time)")
        self.clock = clock
        self.stream = stream if stream is not None else EventStream(clock)
        self.cores = psutil.cpu_count(logical=True) or 1
        #: CPUs the lab and its workers are pinned to, or None when not pinned.
        self.pinned: set[int] | None = None
        if pin_cores is not None:
            if not affinity_supported():
                raise ValueError(
                    "--cores needs CPU affinity, which this platform does not offer "
                    "(Linux and Windows have it; macOS does not)"
                )
            self.pinned = pinned_cpus(pin_cores)
        self._workloads = tuple(workloads) if workloads is not None else _catalogue()
        self.tracer = Tracer(origin=clock.origin, track_runs=True)
        self.watchdog = Watchdog(self.stream.put, clock, threshold_s=threshold_s)
        #: No-progress alarm (C13): a run quiet for ``stall_s`` with nothing to wake it.
        self.progress = ProgressDetector(self.tracer, clock, stall_s=stall_s)
        self.sampler = (
            CoreSampler(self.stream.put, clock, hz=sample_hz, roles=self._watched)
            if sample
            else None
        )
        self._process_workers = process_workers or self.cores
        self._pool: Pool | None = None
        #: Pools made for one run (``RunContext.process_pool``): sampled, and killed on close.
        self._run_pools: set[Pool] = set()
        self._pool_lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self._next_run = 1
        self._serial_walls: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_tid: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._shutdown: asyncio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Lab:
        """Start the lab thread and its probes; returns once the loop is ready."""
        # Start multiprocessing's resource tracker now, while sys.stderr is still the real one:
        # it hands its child sys.stderr.fileno(), and a UI that captures stderr (Textual does)
        # has no usable file descriptor there, so a pool created later would fail to start.
        with contextlib.suppress(Exception):
            resource_tracker.ensure_running()
        self.stream.add_feed(self.tracer)
        self._thread = threading.Thread(target=self._thread_main, name="cpviz-lab", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the lab's event loop did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the lab's event loop failed to start: {self._error}")
        if self.sampler is not None:
            self.sampler.start()
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
        self.tracer.attach(loop)
        self.watchdog.attach(loop)
        self.progress.attach(loop)
        self._sample_gauges()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._ready.set()
                await self._shutdown.wait()
                tg.cancel_scope.cancel()
        finally:
            self.progress.detach()
            self.watchdog.detach()
            self.tracer.detach()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every run, the probes and the pools. Nothing of the lab is left afterwards."""
        if self._closed:
            return
        self._closed = True
        if self.sampler is not None:
            self.sampler.stop()
        self._kill_pool(run_pools=True)
        loop, shutdown = self._loop, self._shutdown
        if loop is not None and shutdown is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(shutdown.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        # Anything a run started while the loop wound down goes too.
        self._kill_pool(run_pools=True)
        self.watchdog.detach()
        self.stream.remove_feed(self.tracer)

    def pin(self, cores: int | None) -> int | None:
        """Pin the lab's threads and workers to the first ``cores`` CPUs, or unpin (None).

        Threads and processes started later inherit the mask from the loop thread, and new
        pools pass it to their workers. Returns the number of cores the lab may now use, or
        None when unpinned. Raises ValueError where the platform has no CPU affinity.
        """
        if not affinity_supported():
            raise ValueError(
                "pinning needs CPU affinity, which this platform does not offer "
                "(Linux and Windows have it; macOS does not)"
            )
        allowed = sorted(os.sched_getaffinity(0)) if cores is None else None
        cpus = set(allowed) if allowed is not None else pinned_cpus(cores or 1)
        self.pinned = None if cores is None else cpus
        for watched in own_threads(lambda: self._loop_tid):
            if watched.role in ("loop", "thread"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(watched.ident, cpus)
        for pid in self.pool_pids():
            with contextlib.suppress(psutil.Error, OSError):
                psutil.Process(pid).cpu_affinity(sorted(cpus))
        return None if cores is None else len(cpus)

    def _kill_pool(self, *, run_pools: bool = False) -> None:
        """Terminate the pool's workers, mid-job if need be; the next use starts a fresh pool."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
            extra = list(self._run_pools) if run_pools else []
            if run_pools:
                self._run_pools.clear()
        for p in ([pool] if pool is not None else []) + extra:
            p.terminate()
            p.join()

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
        with self._pool_lock:
            pools = [p for p in (self._pool, *self._run_pools) if p is not None]
        out: list[int] = []
        for pool in pools:
            workers = getattr(pool, "_pool", None)  # Pool keeps its Process objects here
            if workers is None:
                workers = multiprocessing.active_children()
            out.extend(p.pid for p in list(workers) if p.pid and p.is_alive())
        return out

    def _watched(self) -> list[Watched]:
        out = own_threads(lambda: self._loop_tid)
        out.extend(Watched("process", pid, f"worker {pid}", True) for pid in self.pool_pids())
        return out

    def _new_pool(self, workers: int, method: str) -> Pool:
        ctx = multiprocessing.get_context(method)
        cpus = sorted(self.pinned) if self.pinned is not None else None
        return ctx.Pool(workers, initializer=worker_init, initargs=(cpus,))

    def _process_pool(self) -> Pool:
        with self._pool_lock:
            if self._closed:
                # A run still winding down must not start a pool nobody will ever stop.
                raise RuntimeError("the lab is closing")
            if self._pool is None:
                self._pool = self._new_pool(self._process_workers, "spawn")
            return self._pool

    async def _in_process(
        self, run: _Run, fn: Callable[..., Any], args: tuple[Any, ...], pool: Pool | None = None
    ) -> Any:
        """Await ``fn(*args)`` in a worker process; results come back via the loop."""
        def returned() -> None:
            run.process_jobs -= 1

        future, deliver = threadsafe_future(asyncio.get_running_loop(), returned)
        if pool is None:
            pool = self._process_pool()
        pool.apply_async(
            fn,
            args,
            callback=lambda v: deliver(True, v),
            error_callback=lambda e: deliver(False, e),
        )
        run.process_jobs += 1
        return await future

    # -- controller -----------------------------------------------------------------------------

    def workloads(self) -> Sequence[WorkloadInfo]:
        return [w.info() for w in self._workloads]

    def workload(self, key: str) -> Workload:
        for w in self._workloads:
            if w.key == key:
                return w
        raise KeyError(key)

    def start_run(self, workload: Workload, mode: str, params: dict[str, Any]) -> int:
        """Queue a run of an already-validated mode and parameters; returns its run id."""
        if self._closed or self._loop is None:
            raise RuntimeError("the lab is not running")
        with self._lock:
            run_id = self._next_run
            self._next_run += 1
            run = _Run(run_id, workload, mode, dict(params))
            self._runs[run_id] = run
        self._loop.call_soon_threadsafe(self._spawn_run, run)
        return run_id

    def launch(self, key: str, mode: str | None, settings: dict[str, Any]) -> int:
        """Validate ``key``, ``mode`` and ``settings`` (raises WorkloadError) and start a run."""
        workload = self.workload(key)
        mode, params = workload.resolve(mode, settings)
        return self.start_run(workload, mode, params)

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

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(cancel)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        """Change a live parameter of workload ``key``'s running runs; returns the parsed value.

        Raises WorkloadError for a parameter that is unknown or not live, or a bad value.
        """
        workload = self.workload(key)
        param = next((p for p in workload.params if p.name == name), None)
        if param is None or not param.live:
            live = [p.name for p in workload.params if p.live]
            raise WorkloadError(
                f"{name!r} cannot change while {key} runs; live parameters: "
                + (", ".join(live) or "none")
            )
        parsed = param.parse(value)
        with self._lock:
            runs = [r for r in self._runs.values() if r.workload.key == key and not r.done.is_set()]

        def apply() -> None:
            for run in runs:
                if run.ctx is not None and not run.done.is_set():
                    run.ctx.change(name, parsed)

        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(apply)
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
        """Read every active run's gauges; a timer, not a task, so it never shows as a step."""
        loop = self._loop
        if loop is None or self._closed:
            return
        now = self.clock.now()
        with self._lock:
            runs = [r for r in self._runs.values() if r.gauges and not r.done.is_set()]
        for run in runs:
            self._read_gauges(run, now)
        loop.call_later(1.0 / GAUGE_HZ, self._sample_gauges)

    def _read_gauges(self, run: _Run, now: float) -> None:
        for name, fn in list(run.gauges.items()):
            try:
                value = float(fn())
            except Exception:  # a gauge that cannot be read is simply not drawn
                continue
            self.tracer.emit(Metric(now, run.run_id, name, value))

    def _spawn_run(self, run: _Run) -> None:
        if self._tg is None:
            return
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
        cpu0 = await anyio.to_thread.run_sync(cpu_snapshot, pids_before)
        t0 = self.clock.now()
        self.tracer.emit(RunStart(t0, run.run_id, w.key, run.mode, params_t, total))
        self.progress.watch(run.run_id, t0)
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
            # Closes a stall still open and adds its figures (stall_detected_s, stall_waiters).
            ctx.extra.update(self.progress.unwatch(run.run_id, t1))
            pids = sorted(set(pids_before) | set(self.pool_pids()))
            cpu1 = cpu_snapshot(pids)
            # One last reading, so even a run shorter than a sampling period ends its series
            # on the figures it finished with.
            self._read_gauges(run, t1)
            run.gauges.clear()
            result = self._result(run, params_t, t0, t1, cpu_between(cpu0, cpu1), outcome, ctx)
            run.result = result
            self.tracer.emit(RunEnd(t1, run.run_id, result))
            run.done.set()
            if run.process_jobs and not self._closed:
                # Stopped with jobs still in the workers: stopping means the lanes go quiet.
                self._kill_pool()

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
        switches = sum(max(0, v - ctx0.get(pid, 0)) for pid, v in ctx1.items())
        meter.result = Measurement(wall, cpu_between(cpu0, cpu1), switches)

    @contextlib.asynccontextmanager
    async def process_pool(self, workers: int, method: str) -> AsyncIterator[_RunPool]:
        lab = self._lab
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start method {method!r} is not available here; choose one of: "
                + ", ".join(multiprocessing.get_all_start_methods())
            )
        t0 = lab.clock.now()
        pool = await anyio.to_thread.run_sync(lab._new_pool, workers, method)
        with lab._pool_lock:
            lab._run_pools.add(pool)
            closing = lab._closed
        if closing:
            with lab._pool_lock:
                lab._run_pools.discard(pool)
            await anyio.to_thread.run_sync(_end_pool, pool, abandon_on_cancel=True)
            raise RuntimeError("the lab is closing")
        handle = _RunPool(lab, self._run, pool, workers, method)
        try:
            # Start-up ends when every worker has answered once: spawned workers must start an
            # interpreter and import cpviz's job module before they can take work.
            await handle.warm_up()
            t1 = lab.clock.now()
            handle.startup_s = t1 - t0
            self.emit(Phase(t1, self.run_id, "startup", t0, f"{method}, {workers} workers"))
            yield handle
        finally:
            with lab._pool_lock:
                lab._run_pools.discard(pool)
            # Shielded: a stopped run is cancelled, and an unshielded await would raise before
            # the pool is ended, leaving its workers running.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_end_pool, pool)


def _end_pool(pool: Pool) -> None:
    pool.terminate()
    pool.join()


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
                        seen.add(await self.call(hello, 0.02))
                    tg.start_soon(one)


class LabController:
    """The lab as the UI's :class:`~cpviz.engine.source.Controller`."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def workloads(self) -> Sequence[WorkloadInfo]:
        return self.lab.workloads()

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        return self.lab.launch(key, mode, params)

    def stop(self, key: str) -> None:
        self.lab.stop(key)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        return self.lab.adjust(key, name, value)

    def pin(self, cores: int | None) -> int | None:
        return self.lab.pin(cores)

    def running(self) -> set[str]:
        return self.lab.running()

    def close(self) -> None:
        self.lab.close()


def _catalogue() -> tuple[Workload, ...]:
    from cpviz.workloads.registry import catalogue

    return catalogue()
