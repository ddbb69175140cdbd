"""The per-loop probes of a program cpviz watches as it is: shared by ``cpviz -- python app.py``
(:mod:`cpviz.agent.boot`) and an application that embeds the agent (:mod:`cpviz.agent.install`).

Every asyncio loop the process creates is traced and watched, whichever thread runs it and
however it was made: the tracer attaches when a loop is created, the heartbeat and the watchdog
when it starts running and until it stops. A loop that is not asyncio's own (uvloop) is watched
for freezes, and the screen says once that its task steps cannot be traced. trio runs are traced
through trio's Instrument API once the program imports trio.

Standard library only: this runs inside the user's program (and interpreter).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import weakref
from asyncio import base_events
from asyncio import events as aio_events
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cpviz.agent.tracer import Tracer
from cpviz.agent.trio_probe import TrioLoop, make_instrument, when_imported, wrap_run
from cpviz.agent.watchdog import Watchdog, is_probe
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import IncidentRecord, Observed, Role
from cpviz.engine.stream import EventStream

#: The run id a program's one run has (the viewer numbers it the same).
PROGRAM_RUN = 1
#: Watchdogs of loops that stopped, kept for the run's result: a long-lived process that makes
#: loops over and over must not keep every one of them.
DONE_WATCHDOGS = 64


class Probes:
    """The probes of one program: a tracer per asyncio loop, a watchdog per running loop."""

    def __init__(self, stream: EventStream, clock: MonotonicClock, threshold_s: float, *,
                 track_runs: bool = True, capacity: int | None = None,
                 feed_tracers: bool = True, active: bool = True) -> None:
        self.stream = stream
        self.clock = clock
        self.threshold_s = threshold_s
        #: The program's run: every task of every loop belongs to it.
        self.run_id = PROGRAM_RUN
        #: Whether tracers keep task → run (only the lab's progress detector reads it; a
        #: long-lived application would grow it without end).
        self._track_runs = track_runs
        self._capacity = capacity
        #: Whether tracers are the stream's feeds too; not when a streamer reads them raw.
        self._feed_tracers = feed_tracers
        #: Whether the probes are on. An embedded agent with nobody to tell keeps them off
        #: (:meth:`sleep`) and puts them on every known loop when a viewer comes (:meth:`wake`).
        self.active = active
        #: Every loop made, and the loop running on each thread now: what wake() attaches to.
        self._made: dict[int, weakref.ref[asyncio.AbstractEventLoop]] = {}
        self._running: dict[int, Any] = {}
        #: Tracers taken off their loops by sleep(): drained once more, then forgotten (prune).
        self._retired: list[Tracer] = []
        self._tracers: dict[int, Tracer] = {}
        #: The loop each tracer watches, so live tasks can be listed for a late viewer.
        self._loops: dict[int, weakref.ref[asyncio.AbstractEventLoop]] = {}
        #: Tracers of loops that closed: drained once more by :meth:`prune`, then forgotten.
        self._closed: list[int] = []
        self._watchdogs: dict[int, Watchdog] = {}
        #: Native ids of the threads running a watched loop now.
        self._loop_threads: dict[int, int] = {}
        #: One line for each kind of loop whose task steps cannot be traced (uvloop), so an empty
        #: timeline never passes for an idle one; said once on the stream (recordings keep it).
        self.notes: list[str] = []
        #: Called when a loop starts on a thread (the streamer then sends the thread roles).
        self.on_threads: Callable[[], None] | None = None
        #: Watchdogs of loops that stopped: their freezes still belong to the run's result.
        self._done: deque[Watchdog] = deque(maxlen=DONE_WATCHDOGS)
        self._lock = threading.Lock()

    # -- the hooks ------------------------------------------------------------------------------

    def loop_created(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop was made: trace it from its first task on."""
        with self._lock:
            self._made[id(loop)] = weakref.ref(loop)
        if self.active:
            self._trace(loop)

    def _trace(self, loop: asyncio.AbstractEventLoop) -> None:
        kwargs: dict[str, Any] = {} if self._capacity is None else {"capacity": self._capacity}
        tracer = Tracer(origin=self.clock.origin, track_runs=self._track_runs,
                        default_run=self.run_id, **kwargs)
        try:
            tracer.attach(loop)
        except (TypeError, RuntimeError):
            return
        if self._feed_tracers:
            self.stream.add_feed(tracer)
        with self._lock:
            self._tracers[id(loop)] = tracer
            self._loops[id(loop)] = weakref.ref(loop)

    def loop_closed(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop was closed: its tracer is drained once more, then let go (see prune)."""
        with self._lock:
            self._made.pop(id(loop), None)
            if id(loop) in self._tracers:
                self._closed.append(id(loop))

    def prune(self) -> None:
        """Forget the tracers of closed loops; call right after draining them."""
        with self._lock:
            closed, self._closed = self._closed, []
            self._retired = []
            for key in closed:
                tracer = self._tracers.pop(key, None)
                self._loops.pop(key, None)
                if tracer is not None:
                    self.stream.remove_feed(tracer)

    def loop_running(self, loop: asyncio.AbstractEventLoop | TrioLoop | None) -> None:
        """This thread's loop started (``loop``) or stopped (None) running."""
        me = threading.get_ident()
        with self._lock:
            if loop is None:
                self._running.pop(me, None)
            else:
                self._running[me] = loop
        if loop is not None and not self.active:
            return
        if loop is None:
            with self._lock:
                watchdog = self._watchdogs.pop(me, None)
                self._loop_threads.pop(me, None)
                if watchdog is not None:
                    self._done.append(watchdog)
            if watchdog is not None:
                watchdog.detach()
            return
        if id(loop) not in self._tracers and not isinstance(loop, TrioLoop):
            self._untraced(loop)
        watchdog = Watchdog(self.stream.put, self.clock, threshold_s=self.threshold_s)
        with self._lock:
            self._watchdogs[me] = watchdog
            known = threading.get_native_id() in self._loop_threads.values()
            self._loop_threads[me] = threading.get_native_id()
        watchdog.attach(loop)  # type: ignore[arg-type]  # a TrioLoop quacks as one
        if not known and self.on_threads is not None:
            self.on_threads()

    def _untraced(self, loop: object) -> None:
        note = (f"{type(loop).__module__}.{type(loop).__name__}: task steps are not traced "
                "(not asyncio's own loop); freezes are watched")
        if note not in self.notes:
            self.notes.append(note)
            self.stream.put(Observed(self.clock.now(), os.getpid(), "note", note))

    # -- what the streamer and the result need --------------------------------------------------

    def tracers(self) -> list[Tracer]:
        with self._lock:
            return [*self._tracers.values(), *self._retired]

    # -- on and off (an embedded agent) ---------------------------------------------------------

    def wake(self) -> None:
        """Put the probes on every loop: at once on idle ones, through each running loop's own
        thread on the others (a frozen loop gets them when it turns again)."""
        with self._lock:
            self.active = True
            made = [ref() for ref in self._made.values()]
            running = list(self._running.values())
        for loop in made:
            if loop is not None and not loop.is_closed() and not loop.is_running():
                with self._lock:
                    known = id(loop) in self._tracers
                if not known:
                    self._trace(loop)
        for loop in running:
            with contextlib.suppress(RuntimeError, AttributeError):
                loop.call_soon_threadsafe(self._wake_here, loop)

    def _wake_here(self, loop: Any) -> None:
        """On a running loop's thread: its tracer and its watchdog, if it has none yet."""
        if not self.active:
            return
        with self._lock:
            traced = id(loop) in self._tracers
            watched = threading.get_ident() in self._watchdogs
        if not traced and isinstance(loop, base_events.BaseEventLoop):
            self._trace(loop)
        if not watched:
            self.loop_running(loop)

    def sleep(self) -> None:
        """Take the probes off every loop (the tracers on their loops' own threads)."""
        with self._lock:
            self.active = False
            watchdogs = list(self._watchdogs.items())
            self._watchdogs.clear()
            self._loop_threads.clear()
            loops = [(key, self._loops[key]()) for key in list(self._tracers)]
        for _ident, watchdog in watchdogs:
            watchdog.detach()
            self._done.append(watchdog)
        for key, loop in loops:
            if loop is None or loop.is_closed() or not loop.is_running():
                self._retire(key)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._retire, key)

    def _retire(self, key: int) -> None:
        if self.active:
            return  # woken again before this ran: the tracer stays
        with self._lock:
            tracer = self._tracers.pop(key, None)
            self._loops.pop(key, None)
            if tracer is not None:
                self._retired.append(tracer)
        if tracer is not None:
            tracer.detach()
            self.stream.remove_feed(tracer)

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        """The loops made and still open (a late viewer is told of their tasks)."""
        with self._lock:
            refs = list(self._made.values())
        return [loop for ref in refs if (loop := ref()) is not None and not loop.is_closed()]

    def threads(self) -> list[tuple[int, str, Role]]:
        with self._lock:
            loops = set(self._loop_threads.values())
        out: list[tuple[int, str, Role]] = []
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None:
                continue
            role: Role = "loop" if tid in loops else "probe" if is_probe(thread) else "thread"
            out.append((tid, thread.name, role))
        return out

    def incidents(self, t0: float, t1: float) -> tuple[IncidentRecord, ...]:
        with self._lock:
            watchdogs = list(self._watchdogs.values()) + list(self._done)
        return tuple(i for w in watchdogs for i in w.incidents_between(t0, t1))

    def trio_running(self, loop: Any) -> None:
        """A trio run started (``loop``: its stand-in for the watchdog) or ended (None)."""
        self.loop_running(loop)

    def max_lag(self, t0: float, t1: float) -> float:
        """The worst heartbeat lag of any of the program's loops in [t0, t1]."""
        with self._lock:
            watchdogs = list(self._watchdogs.values()) + list(self._done)
        return max((w.max_lag_between(t0, t1) for w in watchdogs), default=0.0)

    def freezes_since(self, t: float) -> list[tuple[tuple[int, int], float, float | None]]:
        """Freezes that began at ``t`` or later: (a key unique to each, since, duration, or
        None while it lasts)."""
        with self._lock:
            watchdogs = list(self._watchdogs.values()) + list(self._done)
        out: list[tuple[tuple[int, int], float, float | None]] = []
        for watchdog in watchdogs:
            for incident_id, (start, duration) in reversed(list(watchdog.history.items())):
                if start.since < t:
                    break
                out.append(((id(watchdog), incident_id), start.since, duration))
        return out

    def stop(self) -> None:
        with self._lock:
            watchdogs = list(self._watchdogs.values())
        for watchdog in watchdogs:
            watchdog.detach()

    def detach_all(self) -> None:
        """Take every probe off every loop: the tracers on their loops' own threads."""
        self.stop()
        with self._lock:
            pairs = [(self._tracers.pop(key), self._loops.pop(key)()) for key in
                     list(self._tracers)]
        for tracer, loop in pairs:
            self.stream.remove_feed(tracer)
            if loop is None or loop.is_closed():
                continue
            try:
                here = asyncio.get_running_loop() is loop
            except RuntimeError:
                here = False
            if here or not loop.is_running():
                tracer.detach()
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(tracer.detach)


def install_hooks(probes: Probes) -> Callable[[], None]:
    """Make every asyncio loop of this process known to ``probes``; returns the undo.

    Two places see every loop: ``BaseEventLoop.__init__`` (asyncio's own loops, before their
    first task) and ``events._set_running_loop``, which every loop calls when it starts and
    stops running on a thread (uvloop too, as it calls asyncio's). ``BaseEventLoop.close``
    says when a loop's tracer can go.
    """
    original_init = base_events.BaseEventLoop.__init__
    original_close = base_events.BaseEventLoop.close
    original_set = aio_events._set_running_loop
    exported_set = asyncio._set_running_loop

    def init(self: base_events.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        probes.loop_created(self)

    def close(self: base_events.BaseEventLoop) -> None:
        original_close(self)
        probes.loop_closed(self)

    def set_running(loop: asyncio.AbstractEventLoop | None) -> None:
        original_set(loop)
        try:
            probes.loop_running(loop)
        except Exception as exc:  # a probe must never take the program down
            print(f"cpviz: could not watch a loop: {exc}", file=sys.stderr)

    base_events.BaseEventLoop.__init__ = init  # type: ignore[method-assign,assignment]
    base_events.BaseEventLoop.close = close  # type: ignore[method-assign]
    aio_events._set_running_loop = set_running
    # asyncio re-exports it; code that took it from there (uvloop) must see the wrapper too.
    asyncio._set_running_loop = set_running

    def undo() -> None:
        base_events.BaseEventLoop.__init__ = original_init  # type: ignore[method-assign]
        base_events.BaseEventLoop.close = original_close  # type: ignore[method-assign]
        aio_events._set_running_loop = original_set
        asyncio._set_running_loop = exported_set

    return undo


def watch_trio(probes: Probes) -> None:
    """Trace trio runs too, through its Instrument API, once the program imports trio."""

    def patch(trio: ModuleType) -> None:
        try:
            def instrument() -> Any:
                return make_instrument(trio, probes.clock, probes.stream.put, probes.run_id,
                                       probes.trio_running)

            wrap_run(trio, instrument)
        except Exception as exc:  # a probe must never take the program down
            print(f"cpviz: trio will not be traced: {exc}", file=sys.stderr)

    when_imported("trio", patch)
