"""Replay: a recording played back through the same Source interface the live lab uses.

:class:`ReplaySource` releases the recorded events as its replay clock passes their times, so
the Model folds them as it folded them live. The live Model only ever held a prefix of the stream
(it folds batches in the order they were drained), so a replay at position ``t`` has folded the
longest prefix of the file whose events had all happened by ``t``: the prefix live had when it
drained the last of them. The replay clock runs at ``speed`` times real time while playing,
stops when paused, and jumps on :meth:`~ReplaySource.seek`. Real time comes from an injectable
clock (a :class:`~cpviz.engine.clock.ManualClock` in tests), so nothing here depends on the
machine.

A recording on disk is streamed: one pass (:func:`~cpviz.engine.recording.scan`) checks it and
keeps its index (length, freezes, runs), then events are read as the position passes them and
handed out at most :data:`MAX_BATCH` at a time. Nothing holds the file's events, so memory
depends on what the Model retains, not on the file's size.

Going backwards cannot be folded: the Model only moves forward. A backward seek therefore starts
reading the file again from its first event and sets :attr:`~ReplaySource.needs_reset`; the app
calls :meth:`~ReplaySource.take_reset`, builds a new Model, and the next polls return every
event up to the new position.

:class:`ReplayController` stands in for the lab: it offers the workloads the recording's header
lists (so the run panel looks as it did), reports as running the workloads whose runs are in
progress at the replay position, and refuses to start anything, saying why.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cpviz.engine.clock import Clock, MonotonicClock
from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.errors import CpvizError
from cpviz.engine.events import Event, OsSamples, TaskStep
from cpviz.engine.osrows import Store
from cpviz.engine.recording import Recording, RecordingReader
from cpviz.engine.recording.index import Index, Indexer, RunSpan, scan
from cpviz.engine.recording.os_samples import Replayed

#: Playback speeds, slowest first: the steps ``faster()`` and ``slower()`` move through.
SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Most events one poll hands out; after a long seek the app polls until :attr:`behind` clears.
MAX_BATCH = 5_000


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


def _read(path: str) -> Iterator[Event]:
    """The events of the file at ``path``, read as they are asked for; closing the iterator
    closes the file."""
    with RecordingReader(path) as reader:
        yield from reader


class ReplaySource:
    """A recording as a Source: events come out as the replay clock passes their times.

    Positions (:attr:`position`, :meth:`seek`, :attr:`duration`) are seconds from the
    recording's start; :attr:`at` and ``clock.now()`` are the same moment on the recorded
    session clock, which is what the events and the Model use.

    Made from events in memory (a test's, or ``from_recording``) or, with :meth:`open`, from a
    file that it streams.
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
        indexer = Indexer()
        for ev in events:
            indexer.add(ev)
        first = indexer.first if indexer.events else None
        last = indexer.last if indexer.events else None
        begin = first if start is None else min(start, first if first is not None else start)
        self._setup(cores, begin if begin is not None else 0.0, last, indexer.incidents,
                    _spans(indexer.runs()), lambda: iter(events), wall, paused,
                    indexer.os_samples > 0)

    @classmethod
    def open(
        cls, path: str | Path, *, index: Index | None = None, wall: Clock | None = None,
        paused: bool = False,
    ) -> ReplaySource:
        """Stream the recording at ``path`` (checked first, unless its ``index`` is given)."""
        index = index if index is not None else scan(path)
        self = cls.__new__(cls)
        name = str(path)
        self._setup(index.header.cores, index.start, index.last, index.incidents,
                    _spans(index.runs), lambda: _read(name), wall, paused,
                    index.os_samples > 0)
        return self

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

    def _setup(
        self,
        cores: int,
        start: float,
        last: float | None,
        incidents: Sequence[float],
        runs: list[tuple[float, float, str]],
        opener: Callable[[], Iterator[Event]],
        wall: Clock | None,
        paused: bool,
        has_os_rows: bool = False,
    ) -> None:
        if cores < 1:
            raise ValueError(f"cores must be at least 1, got {cores}")
        self.cores = cores
        #: The replay clock (what the app reads as "now").
        self.clock: Clock = ReplayClock(self)
        self._wall: Clock = wall if wall is not None else MonotonicClock()
        #: Recorded session time where the replay starts (position 0).
        self.start = start
        #: Recorded session time of the last event.
        self.end = max(start, last if last is not None else start)
        self._opener = opener
        self._events: Iterator[Event] = opener()
        #: The next event, read but not yet handed out (its time is past the position).
        self._ahead: Event | None = None
        #: True when the last poll stopped at :data:`MAX_BATCH`: poll again for the rest.
        self.behind = False
        self.max_batch = MAX_BATCH
        self._reset = False
        self._speed = 1.0
        self._paused = paused
        # Position anchor: session time ``_at0`` at wall time ``_wall0``, moving at ``_speed``.
        self._at0 = self.start
        self._wall0 = self._wall.now()
        self._incidents = sorted(incidents)
        #: Each recorded run as (start, end, workload key); end is infinite for a run the
        #: recording stopped before.
        self.runs = runs
        #: Whether the recording holds thread and process rows, and the store they are played
        #: into up to the position (the rows view reads it as it reads the live sampler's).
        self.has_os_rows = has_os_rows
        self._os_rows = Replayed()

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
            self._rewind()
        self._anchor(at)

    def _rewind(self) -> None:
        """Read again from the first event; the Model must be rebuilt."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
        self._events = self._opener()
        self._ahead = None
        self.behind = False
        self._reset = True
        self._os_rows.clear()

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
    def os_rows(self) -> Store | None:
        """The thread and process rows played so far, or None when the recording has none."""
        return self._os_rows.store if self.has_os_rows else None

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
        """Events up to the position not handed out yet, file order, at most ``max_batch``."""
        if self._reset:
            return []
        at = self.at
        out: list[Event] = []
        ahead = self._ahead
        events = self._events
        limit = self.max_batch
        while len(out) < limit:
            if ahead is None:
                ahead = next(events, None)
                if ahead is None:
                    break
            t = ahead.end if type(ahead) is TaskStep else ahead.t  # type: ignore[union-attr]
            if t > at:
                break
            out.append(ahead)
            if type(ahead) is OsSamples:
                self._os_rows.apply(ahead)
            ahead = None
        self._ahead = ahead
        self.behind = len(out) >= limit
        return out

    def close(self) -> None:
        """Close the file being read (a replay from disk); polls after this give nothing."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
        self._events = iter(())
        self._ahead = None

    def running_at(self, at: float) -> set[str]:
        """Workload keys with a run in progress at recorded time ``at``."""
        return {key for t0, t1, key in self.runs if t0 <= at < t1}


def _spans(runs: Sequence[RunSpan]) -> list[tuple[float, float, str]]:
    """The runs a replay reports as going: each begun in the recording, until it ended."""
    return [
        (run.start, run.end if run.end is not None else math.inf, run.workload)
        for run in runs
        if run.start is not None
    ]


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
