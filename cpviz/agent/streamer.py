"""The observed side's end of the channel: what the probes produced, sent in batches.

Task steps leave as the tracers' raw ring records and spawns as their bare fields, so the
watched program pays microseconds per batch rather than a formatted line per step; the viewer
makes the events (:mod:`cpviz.engine.wire`). Standard library only: it runs inside programs
cpviz observes as they are, as well as in the lab.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from cpviz.agent.tracer import Tracer
from cpviz.engine.events import Event, Role, StreamGap
from cpviz.engine.recording import encode_lines
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    EVENTS,
    SPAWNS,
    STEPS,
    THREADS,
    Sender,
    encode_spawns,
    frame,
    json_frame,
)

#: How often the streamer sends what the probes produced. Short enough that the screen (25 fps)
#: never waits on it; long enough that a busy loop's steps cross in batches of thousands.
FLUSH_S = 0.02
#: How long the streamer sleeps when the last flush found nothing (a probe's event wakes it).
IDLE_FLUSH_S = 0.1
#: How often the thread list is looked at (it is sent only when it changed).
THREADS_S = 0.5



class Probes(Protocol):
    """What the streamer sends: the tracers of the traced loops, the other probes' stream, and
    who the process's threads are."""

    stream: EventStream

    def tracers(self) -> list[Tracer]: ...

    def threads(self) -> list[tuple[int, str, Role]]: ...


class Streamer:
    """Sends the probes' events to the viewer from its own thread, a batch every FLUSH_S."""

    def __init__(self, probes: Probes, sender: Sender, parent: int,
                 on_orphaned: Callable[[], None]) -> None:
        self._probes = probes
        self._sender = sender
        self._parent = parent
        self._on_orphaned = on_orphaned
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads_sent: list[Any] = []
        self._threads_at = 0.0
        self._thread_count = 0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpviz-streamer", daemon=True)
        # The streamer reads the tracers' rings raw; the stream keeps only the queue the other
        # probes (watchdog, progress detector) put into.
        for tracer in probes.tracers():
            probes.stream.remove_feed(tracer)
        probes.stream.on_put = self._wake.set

    def start(self) -> None:
        self._thread.start()

    def threads_changed(self) -> None:
        """A thread took on a role (a loop started on it): tell the viewer at the next flush,
        not in up to THREADS_S, so it reads the right thread from the first freeze on."""
        self._threads_at = 0.0
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.flush()

    def _run(self) -> None:
        idle = False
        while not self._stop.is_set():
            # Busy: every FLUSH_S. Idle: until a probe puts an event (an incident goes out at
            # once) or IDLE_FLUSH_S passes, so an idle observed process wakes rarely.
            self._wake.wait(IDLE_FLUSH_S if idle else FLUSH_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            if os.getppid() != self._parent:
                # The viewer is gone and the channel somehow still open: do not linger.
                self._on_orphaned()
                return
            try:
                idle = not self.flush()
            except Exception as exc:  # a probe must never take the program down
                print(f"cpviz agent: streaming failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr)

    def flush(self) -> bool:
        """Send everything produced since the last flush, in the order it was produced.

        Returns whether there was anything to send.
        """
        with self._lock:
            out = bytearray()
            events: list[Event] = []
            spawns: list[tuple[float, int, str, int, int]] = []

            def send_events() -> None:
                if events:
                    out.extend(frame(EVENTS, encode_lines(events).encode()))
                    events.clear()

            def send_spawns() -> None:
                if spawns:
                    out.extend(frame(SPAWNS, encode_spawns(spawns)))
                    spawns.clear()

            def steps(raw: bytes) -> None:
                send_events()
                send_spawns()
                out.extend(frame(STEPS, raw))

            def spawn(at: float, task_id: int, name: str, run: int, parent: int) -> None:
                send_events()
                spawns.append((at, task_id, name, run, parent))

            def event(ev: Event) -> None:
                send_spawns()
                events.append(ev)

            probes = self._probes
            dropped = 0
            for tracer in probes.tracers():
                dropped += tracer.drain_raw(steps, spawn, event)
                send_spawns()
            events.extend(probes.stream.drain())
            if dropped:
                events.append(StreamGap(probes.stream.clock.now(), dropped))
            send_events()
            now = time.monotonic()
            # A thread started or ended (a pool's workers): its name and role go out at once,
            # so the viewer's rows are named from their first sample, not up to THREADS_S on.
            count = threading.active_count()
            if now - self._threads_at >= THREADS_S or count != self._thread_count:
                self._threads_at = now
                self._thread_count = count
                threads = [list(t) for t in probes.threads()]
                if threads != self._threads_sent:
                    self._threads_sent = threads
                    out.extend(json_frame(THREADS, threads))
            if out:
                self._sender.send(bytes(out))
            return bool(out)
