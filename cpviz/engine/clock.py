"""The one clock every probe stamps events with.

All events carry seconds since the clock's origin, so a recording's numbers stay small and every
producer thread (tracer, watchdog, sampler, lab) agrees on what "now" means. Tests and screenshots
inject a :class:`ManualClock` so nothing they draw depends on the real time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that can say how many seconds have passed since its origin."""

    def now(self) -> float:
        """Seconds since the origin; never goes backwards."""
        ...


class MonotonicClock:
    """The real clock: ``time.perf_counter`` (CLOCK_MONOTONIC on Linux), shifted to an origin."""

    __slots__ = ("origin",)

    def __init__(self, origin: float | None = None) -> None:
        #: perf_counter reading that counts as t = 0.
        self.origin = time.perf_counter() if origin is None else origin

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def from_perf(self, perf: float) -> float:
        """Convert a raw ``perf_counter`` reading, as hot paths store them, to clock time."""
        return perf - self.origin


class ManualClock:
    """A clock that only moves when told to, for deterministic tests and snapshots."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (asked to advance {seconds} s)")
        self._now += seconds

    def set(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"a clock cannot go backwards (from {self._now} to {t})")
        self._now = t
