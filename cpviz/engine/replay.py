"""Replay: a recording played back through the same Source interface the live lab uses.

:class:`ReplaySource` releases the recorded events as its replay clock passes their times, so
the Model folds them exactly as it folded them live and the screen at any moment is the screen
that was. The replay clock runs at ``speed`` times real time while playing, stops when paused,
and jumps on :meth:`~ReplaySource.seek`. Real time comes from an injectable clock (a
:class:`~cpviz.engine.clock.ManualClock` in tests), so nothing here depends on the machine.

Going backwards cannot be folded: the Model only moves forward. A backward seek therefore sets
:attr:`~ReplaySource.needs_reset`; the app calls :meth:`~ReplaySource.take_reset`, builds a new
Model, and the next :meth:`~ReplaySource.poll` returns every event up to the new position.

:class:`ReplayController` stands in for the lab: it offers the workloads the recording's header
lists (so the run panel looks as it did), reports as running the workloads whose runs are in
progress at the replay position, and refuses to start anything, saying why.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from cpviz.engine.clock import Clock, MonotonicClock
from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.errors import CpvizError
from cpviz.engine.events import Event, IncidentStart, RunEnd, RunStart, StallStart
from cpviz.engine.recording import Recording
from cpviz.engine.source import event_time

#: Playback speeds, slowest first: the steps ``faster()`` and ``slower()`` move through.
SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class ReplayError(CpvizError):
    """Something a replay cannot do (start a workload, an unknown speed)."""


class ReplayClock:
    """The Source clock of a replay: the recorded session time at the replay position."""

    __slots__ = ("_source",)

    def __init__(self, source: ReplaySource) -> None:
        self._source = source

    def now(self) -> float:
        """Recorded session time at the position (jumps back after a backward seek)."""
        return self._source.at


class ReplaySource:
    """A recording as a Source: events come out as the replay clock passes their times.

    Positions (:attr:`position`, :meth:`seek`, :attr:`duration`) are seconds from the
    recording's start; :attr:`at` and ``clock.now()`` are the same moment on the recorded
    session clock, which is what the events and the Model use.
    """

    def __init__(
        self,
        events: Sequence[Event],
        cores: int,
        *,
        start: float | None = None,
        wall: Clock | None = None,
        paused: bool = False,
    ) -> None:
        if cores < 1:
            raise ValueError(f"cores must be at least 1, got {cores}")
        self.cores = cores
        #: The replay clock (what the app reads as "now").
        self.clock: Clock = ReplayClock(self)
        self._wall: Clock = wall if wall is not None else MonotonicClock()
        # Stable: events of one moment stay in the order the Model saw them live.
        self._events = sorted(events, key=event_time)
        self._times = [event_time(ev) for ev in self._events]
        first = self._times[0] if self._times else 0.0
        #: Recorded session time where the replay starts (position 0).
        self.start = first if start is None else min(start, first)
        #: Recorded session time of the last event.
        self.end = max(self.start, self._times[-1] if self._times else self.start)
        self._next = 0
        self._reset = False
        self._speed = 1.0
        self._paused = paused
        # Position anchor: session time ``_at0`` at wall time ``_wall0``, moving at ``_speed``.
        self._at0 = self.start
        self._wall0 = self._wall.now()
        self._incidents = [
            ev.t for ev in self._events if isinstance(ev, (IncidentStart, StallStart))
        ]
        #: Each recorded run as (start, end, workload key); end is infinite for a run the
        #: recording stopped before.
        self.runs: list[tuple[float, float, str]] = []
        starts: dict[int, tuple[float, str]] = {}
        for ev in self._events:
            if isinstance(ev, RunStart):
                starts[ev.run_id] = (ev.t, ev.workload)
            elif isinstance(ev, RunEnd) and ev.run_id in starts:
                t0, key = starts.pop(ev.run_id)
                self.runs.append((t0, ev.t, key))
        self.runs.extend((t0, math.inf, key) for t0, key in starts.values())

    @classmethod
    def from_recording(
        cls, recording: Recording, *, wall: Clock | None = None, paused: bool = False
    ) -> ReplaySource:
        return cls(
            recording.events,
            recording.header.cores,
            start=recording.header.clock_start,
            wall=wall,
            paused=paused,
        )

    # -- the clock -----------------------------------------------------------------------------

    @property
    def at(self) -> float:
        """The replay position on the recorded session clock."""
        if self._paused:
            return self._at0
        moved = (self._wall.now() - self._wall0) * self._speed
        return min(self.end, self._at0 + max(0.0, moved))

    def _anchor(self, at: float) -> None:
        self._at0 = min(self.end, max(self.start, at))
        self._wall0 = self._wall.now()

    @property
    def position(self) -> float:
        """Seconds from the start of the recording."""
        return self.at - self.start

    @property
    def duration(self) -> float:
        """Seconds from the start of the recording to its last event."""
        return self.end - self.start

    @property
    def finished(self) -> bool:
        """True once the position has reached the last event."""
        return self.at >= self.end

    @property
    def paused(self) -> bool:
        return self._paused

    def play(self) -> None:
        if self._paused:
            self._wall0 = self._wall.now()
            self._paused = False

    def pause(self) -> None:
        if not self._paused:
            self._anchor(self.at)
            self._paused = True

    def toggle(self) -> bool:
        """Pause if playing, play if paused; returns whether it is paused now."""
        if self._paused:
            self.play()
        else:
            self.pause()
        return self._paused

    @property
    def speed(self) -> float:
        """Replay seconds per real second: one of :data:`SPEEDS`."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value not in SPEEDS:
            allowed = ", ".join(f"{s:g}" for s in SPEEDS)
            raise ReplayError(f"speed must be one of {allowed}, got {value:g}")
        self._anchor(self.at)
        self._speed = float(value)

    def faster(self) -> float:
        """Step up to the next speed (stays at the fastest); returns the speed now."""
        i = SPEEDS.index(self._speed)
        self.speed = SPEEDS[min(i + 1, len(SPEEDS) - 1)]
        return self._speed

    def slower(self) -> float:
        """Step down to the previous speed (stays at the slowest); returns the speed now."""
        i = SPEEDS.index(self._speed)
        self.speed = SPEEDS[max(i - 1, 0)]
        return self._speed

    # -- moving --------------------------------------------------------------------------------

    def seek(self, position: float) -> None:
        """Go to ``position`` seconds from the start (clamped to the recording).

        Going backwards sets :attr:`needs_reset`: the Model must be rebuilt.
        """
        self._seek_at(self.start + position)

    def _seek_at(self, at: float) -> None:
        at = min(self.end, max(self.start, at))
        if at < self.at:
            self._next = 0
            self._reset = True
        self._anchor(at)

    def next_incident(self) -> float | None:
        """Jump to the next loop freeze or stall after the position, where it is detected.

        Returns the new position, or None (and stays put) when there is none.
        """
        now = self.at
        i = bisect.bisect_right(self._incidents, now)
        if i >= len(self._incidents):
            return None
        self._seek_at(self._incidents[i])
        return self.position

    @property
    def needs_reset(self) -> bool:
        """A backward seek happened: build a new Model before the next poll."""
        return self._reset

    def take_reset(self) -> bool:
        """Whether a new Model is needed; clears the flag. Until it is taken, poll is empty."""
        reset, self._reset = self._reset, False
        return reset

    # -- the Source protocol ---------------------------------------------------------------------

    def poll(self) -> list[Event]:
        """Every event up to the position not handed out yet (all of them after a reset)."""
        if self._reset:
            return []
        stop = bisect.bisect_right(self._times, self.at, lo=self._next)
        out = self._events[self._next : stop]
        self._next = stop
        return out

    def running_at(self, at: float) -> set[str]:
        """Workload keys with a run in progress at recorded time ``at``."""
        return {key for t0, t1, key in self.runs if t0 <= at < t1}


class ReplayController:
    """The lab's stand-in during a replay: shows the recorded workloads, starts nothing."""

    def __init__(
        self, source: ReplaySource, infos: Sequence[WorkloadInfo], path: str = "the recording"
    ) -> None:
        self.source = source
        self.infos = tuple(infos)
        self.path = path
        #: The last thing a key asked that a replay cannot do, for the app to show.
        self.notice: str | None = None

    def workloads(self) -> Sequence[WorkloadInfo]:
        return self.infos

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        self.notice = f"this is a replay of {self.path}: {key} cannot be started here"
        raise ReplayError(self.notice)

    def stop(self, key: str) -> None:
        # Called from a key press while the recorded run is in progress: say so, change nothing.
        self.notice = f"this is a replay of {self.path}: the recorded {key} run plays on"

    def running(self) -> set[str]:
        return self.source.running_at(self.source.at)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        self.notice = f"this is a replay of {self.path}: {name} cannot change"
        raise ReplayError(self.notice)

    def pin(self, cores: int | None) -> int | None:
        raise ValueError(f"this is a replay of {self.path}: it cannot be pinned to cores")

    def close(self) -> None:
        """Nothing runs, so nothing to release."""
