"""One bounded, thread-safe stream that every probe writes into and one consumer drains.

Producers on other threads (watchdog, sampler) ``put`` events into a bounded deque; the tracer
keeps its own lock-free ring for the loop thread and is drained first, as a *feed*. When the
stream is full, new events are dropped and counted, and the consumer receives a
:class:`StreamGap` so the views can say so instead of drawing a hole as idle time.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from cpviz.engine.clock import Clock
from cpviz.engine.events import Event, StreamGap


class Feed(Protocol):
    """A producer with its own buffer, drained by the stream's consumer."""

    def drain(self, out: list[Event]) -> int:
        """Append pending events to ``out``; return how many were dropped since the last drain."""
        ...


class EventStream:
    """Bounded multi-producer, single-consumer event stream."""

    def __init__(self, clock: Clock, capacity: int = 100_000) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.clock = clock
        self.capacity = capacity
        self._queue: deque[Event] = deque()
        self._feeds: list[Feed] = []
        self._taps: list[Callable[[list[Event]], None]] = []
        self._lock = threading.Lock()
        self._dropped = 0
        #: Events dropped over the stream's life.
        self.dropped_total = 0
        #: Called after every put, from the putting thread (the observed side wakes its
        #: streamer with it, so an incident goes out at once); must be quick.
        self.on_put: Callable[[], None] | None = None

    def put(self, event: Event) -> None:
        """Add an event from any thread. Never blocks; drops (and counts) when full."""
        queue = self._queue
        if len(queue) >= self.capacity:
            with self._lock:
                self._dropped += 1
                self.dropped_total += 1
            return
        queue.append(event)
        if self.on_put is not None:
            self.on_put()

    def add_feed(self, feed: Feed) -> None:
        with self._lock:
            self._feeds.append(feed)

    def remove_feed(self, feed: Feed) -> None:
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)

    def add_tap(self, tap: Callable[[list[Event]], None]) -> None:
        """Hand every drained batch to ``tap`` as well, on the draining thread, before the
        caller sees it: a recorder sees exactly what the Model folds. A tap must be quick (an
        append) and must not change the batch."""
        with self._lock:
            self._taps.append(tap)

    def remove_tap(self, tap: Callable[[list[Event]], None]) -> None:
        with self._lock:
            if tap in self._taps:
                self._taps.remove(tap)

    def drain(self) -> list[Event]:
        """Everything produced since the last drain. Call from one consumer thread only."""
        out: list[Event] = []
        with self._lock:
            feeds = list(self._feeds)
            taps = list(self._taps)
        dropped = 0
        for feed in feeds:
            dropped += feed.drain(out)
        self.dropped_total += dropped
        queue = self._queue
        popleft = queue.popleft
        for _ in range(len(queue)):
            out.append(popleft())
        with self._lock:
            dropped += self._dropped
            self._dropped = 0
        if dropped:
            out.append(StreamGap(self.clock.now(), dropped))
        if out:
            for tap in taps:
                tap(out)
        return out
