"""The lab's process pools: one shared pool for quick jobs, and pools made for a single run.

Every worker starts with :func:`worker_init`, which makes sure no worker outlives the observed
process: it leaves Ctrl+C to its parent, closes its copy of the channel, and exits quietly as
soon as its parent is gone (so a SIGKILLed lab never leaves workers finishing jobs and printing
tracebacks into the user's terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any

from cpviz.engine.handoff import threadsafe_future
from cpviz.engine.wire import CHANNEL_FD_ENV

#: How often a worker checks that its parent is still there.
PARENT_CHECK_S = 0.25


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(0)  # no atexit, no traceback: the job it was doing no longer matters


def worker_init(cpus: list[int] | None = None) -> None:
    """Set up one pool worker (runs in the worker, before any job)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = os.environ.get(CHANNEL_FD_ENV, "")
    if fd.isdigit():
        # A forked worker inherits the observed side's end of the channel; holding it would
        # keep the channel open after the observed process died.
        with contextlib.suppress(OSError):
            os.close(int(fd))
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="cpviz-parent-watch", daemon=True
    ).start()


def ready_pid(hold_s: float) -> int:
    """Answer with this worker's pid; holding briefly spreads the calls over all workers."""
    time.sleep(hold_s)
    return os.getpid()


def new_pool(workers: int, method: str, cpus: list[int] | None) -> Pool:
    return multiprocessing.get_context(method).Pool(
        workers, initializer=worker_init, initargs=(cpus,)
    )


def end_pool(pool: Pool) -> None:
    pool.terminate()
    pool.join()


def pool_pids(pool: Pool) -> list[int]:
    """The pool's workers alive now."""
    workers = getattr(pool, "_pool", None)  # Pool keeps its Process objects here
    if workers is None:
        workers = multiprocessing.active_children()
    return [p.pid for p in list(workers) if p.pid and p.is_alive()]


class Pools:
    """The shared pool (started on first use) and the per-run pools, all killable at once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._shared: Pool | None = None
        self._run_pools: set[Pool] = set()
        self._lock = threading.Lock()
        self.closed = False
        #: CPUs new workers are pinned to, or None.
        self.cpus: list[int] | None = None

    def shared(self) -> Pool:
        with self._lock:
            if self.closed:
                # A run still winding down must not start a pool nobody will ever stop.
                raise RuntimeError("the lab is closing")
            if self._shared is None:
                self._shared = new_pool(self.workers, "spawn", self.cpus)
            return self._shared

    def adopt(self, pool: Pool) -> bool:
        """Track a run's pool; False when the lab is closing (the caller ends it)."""
        with self._lock:
            if self.closed:
                return False
            self._run_pools.add(pool)
            return True

    def release(self, pool: Pool) -> None:
        with self._lock:
            self._run_pools.discard(pool)

    def kill(self, *, run_pools: bool = False) -> None:
        """Terminate the workers, mid-job if need be; the next use starts a fresh pool."""
        with self._lock:
            pool, self._shared = self._shared, None
            extra = list(self._run_pools) if run_pools else []
            if run_pools:
                self._run_pools.clear()
        for p in ([pool] if pool is not None else []) + extra:
            end_pool(p)

    def pids(self) -> list[int]:
        with self._lock:
            pools = [p for p in (self._shared, *self._run_pools) if p is not None]
        return [pid for pool in pools for pid in pool_pids(pool)]


async def call_in(pool: Pool, fn: Callable[..., Any], args: tuple[Any, ...],
                  on_settle: Callable[[], None] | None = None) -> Any:
    """Await ``fn(*args)`` in a worker; the result comes back through the loop."""
    future, deliver = threadsafe_future(asyncio.get_running_loop(), on_settle)
    pool.apply_async(
        fn, args, callback=lambda v: deliver(True, v), error_callback=lambda e: deliver(False, e)
    )
    return await future
