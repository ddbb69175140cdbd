"""trio, watched through its own Instrument API: task steps, spawns and exits, and a heartbeat.

trio has no loop object to patch; it tells instruments what its scheduler does instead. The
probe turns those calls into the same events asyncio's tracer makes: a step's ready time is when
the task was scheduled (so "ready but not running" is real), its start and end the step's own;
the step during which the task exited is its final one. The watchdog's heartbeat reaches trio's
thread through ``run_sync_soon`` on its token, so a frozen trio run is caught and named exactly
as a frozen asyncio loop is.

``trio.run`` is wrapped the moment the program imports trio (see :func:`when_imported`), so the
program's code is unchanged. Standard library only, besides trio itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cpviz.engine.clock import Clock
from cpviz.engine.events import Event, TaskSpawn, TaskStep


class _Timer:
    """What the watchdog holds of a pending beat: when it is due, and a way to cancel it."""

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def when(self) -> float:
        return self.due


class TrioLoop:
    """Just enough of an event loop for the watchdog: its timers run on trio's thread, handed
    over with ``run_sync_soon`` by a small timer thread of cpviz's."""

    def __init__(self, token: Any) -> None:
        self._token = token
        self._timers: list[_Timer] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cpviz-trio-timer", daemon=True)
        self._thread.start()

    def time(self) -> float:
        return time.monotonic()

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.time() + delay, callback)
        with self._wake:
            self._timers.append(timer)
            self._wake.notify()
        return timer

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        self._soon(callback)

    def _soon(self, callback: Callable[[], None]) -> None:
        try:
            self._token.run_sync_soon(callback)
        except Exception:  # the run is over (RunFinishedError): nothing left to beat
            self.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed:
                    return
                self._timers = [t for t in self._timers if not t.cancelled]
                due = [t for t in self._timers if t.due <= self.time()]
                if not due:
                    nearest = min((t.due for t in self._timers), default=self.time() + 1.0)
                    self._wake.wait(max(0.0, nearest - self.time()))
                    continue
                for timer in due:
                    self._timers.remove(timer)
            for timer in due:
                self._soon(timer.callback)


def make_instrument(trio: ModuleType, clock: Clock, emit: Callable[[Event], None], run_id: int,
                    on_run: Callable[[TrioLoop | None], None]) -> Any:
    """An instrument for ``trio.run`` that reports every task step; ``on_run`` hears when the
    run starts (with its loop stand-in, on trio's thread) and ends (None)."""

    class Probe(trio.abc.Instrument):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self._ready: dict[int, float] = {}
            self._start: dict[int, float] = {}
            self._exiting: set[int] = set()
            self._loop: TrioLoop | None = None

        def before_run(self) -> None:
            self._loop = TrioLoop(trio.lowlevel.current_trio_token())
            on_run(self._loop)

        def after_run(self) -> None:
            on_run(None)
            if self._loop is not None:
                self._loop.close()

        def task_spawned(self, task: Any) -> None:
            nursery = task.parent_nursery
            parent = nursery.parent_task if nursery is not None else None
            emit(TaskSpawn(clock.now(), id(task), task.name, run_id,
                           id(parent) if parent is not None else 0))

        def task_scheduled(self, task: Any) -> None:
            self._ready[id(task)] = clock.now()

        def before_task_step(self, task: Any) -> None:
            self._start[id(task)] = clock.now()

        def task_exited(self, task: Any) -> None:
            self._exiting.add(id(task))

        def after_task_step(self, task: Any) -> None:
            end = clock.now()
            key = id(task)
            start = self._start.pop(key, end)
            ready = self._ready.pop(key, start)
            final = key in self._exiting
            if final:
                self._exiting.discard(key)
            emit(TaskStep(key, ready, start, end, final))

    return Probe()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``then(module)`` right after ``name`` is first imported, wherever from."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once, and never for the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module
        then = self.then

        def exec_module(module: ModuleType) -> None:
            original(module)
            then(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def when_imported(name: str, then: Callable[[ModuleType], None]) -> None:
    """Call ``then`` with module ``name`` as soon as the program imports it (now, if it has)."""
    module = sys.modules.get(name)
    if module is not None:
        then(module)
    else:
        sys.meta_path.insert(0, _AfterImport(name, then))


def wrap_run(trio: ModuleType, instrument: Callable[[], Any]) -> None:
    """``trio.run`` with cpviz's instrument added to whatever the program passes."""
    original = trio.run

    def run(*args: Any, instruments: Any = (), **kwargs: Any) -> Any:
        return original(*args, instruments=(*instruments, instrument()), **kwargs)

    run.__wrapped__ = original  # type: ignore[attr-defined]
    trio.run = run  # type: ignore[attr-defined]
