"""One pass over a recording, keeping only what must be known before it is played.

A replay has to know its length (for the position and ``g``), where its freezes and stalls are
(for ``n``), which runs were going when (for the run panel) and whether the whole file is sound
before its first frame; ``--check`` and ``screenshot`` need the same. :func:`scan` reads the file
once through the validating reader and keeps that, in memory bounded by the reader's caps on
runs and incidents, never the events themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cpviz.engine.events import (
    Event,
    IncidentEnd,
    IncidentStart,
    OsSamples,
    RunEnd,
    RunStart,
    StallStart,
    TaskStep,
)
from cpviz.engine.recording.header import Header
from cpviz.engine.recording.reader import RecordingReader


@dataclass(frozen=True)
class RunSpan:
    """One run as the recording shows it."""

    run_id: int
    workload: str
    mode: str
    #: When it started, or None when the recording began after it did.
    start: float | None
    #: When it ended, or None when the recording stopped first.
    end: float | None
    #: How it ended ("completed", "stopped", "failed: ..."), or None while unfinished.
    outcome: str | None = None
    wall_s: float | None = None


@dataclass(frozen=True)
class Index:
    """What a recording holds, without its events."""

    path: str
    header: Header
    #: Events after the header.
    events: int
    #: Earliest and latest moment any event describes (None for a recording with none).
    first: float | None
    last: float | None
    #: Detection times of every loop freeze and stall, in time order.
    incidents: tuple[float, ...]
    freezes: int
    stalls: int
    #: Every run, in the order it started (or ended, for one begun before the recording).
    runs: tuple[RunSpan, ...]
    #: The first loop freeze: when it was detected and, if it ended, when.
    first_freeze: tuple[float, float | None] | None
    #: When the first stall was detected.
    first_stall: float | None
    #: When the first run started, and when the first and the last run ended (file order).
    first_run_start: float | None = None
    first_run_end: float | None = None
    last_run_end: float | None = None
    #: Batches of thread and process samples (0: the replay has no OS rows to show).
    os_samples: int = 0

    @property
    def start(self) -> float:
        """Where a replay starts: the header's clock reading, or an earlier first event."""
        first = self.first if self.first is not None else self.header.clock_start
        return min(self.header.clock_start, first)

    @property
    def end(self) -> float:
        """Where a replay ends: its last event (or its start, when it has none)."""
        return max(self.start, self.last if self.last is not None else self.start)

    @property
    def duration(self) -> float:
        return self.end - self.start


class Indexer:
    """Folds events one at a time into an :class:`Index`."""

    def __init__(self) -> None:
        self.events = 0
        self.first = math.inf
        self.last = -math.inf
        self.incidents: list[float] = []
        self.freezes = 0
        self.stalls = 0
        self.os_samples = 0
        self._open: dict[int, RunStart] = {}
        self._runs: list[RunSpan] = []
        self._first_freeze: IncidentStart | None = None
        self._first_freeze_end: float | None = None
        self._first_stall: float | None = None
        self._first_run_start: float | None = None
        self._first_run_end: float | None = None
        self._last_run_end: float | None = None

    def add(self, ev: Event) -> None:
        self.events += 1
        kind = type(ev)
        t = ev.end if kind is TaskStep else ev.t  # type: ignore[union-attr]
        if t < self.first:
            self.first = t
        if t > self.last:
            self.last = t
        if kind is TaskStep:
            return
        if kind is OsSamples:
            self.os_samples += 1
        elif kind is IncidentStart:
            assert isinstance(ev, IncidentStart)
            self.freezes += 1
            self.incidents.append(ev.t)
            if self._first_freeze is None:
                self._first_freeze = ev
        elif kind is IncidentEnd:
            assert isinstance(ev, IncidentEnd)
            first = self._first_freeze
            if first is not None and self._first_freeze_end is None \
                    and ev.incident_id == first.incident_id:
                self._first_freeze_end = ev.t
        elif kind is StallStart:
            assert isinstance(ev, StallStart)
            self.stalls += 1
            self.incidents.append(ev.t)
            if self._first_stall is None:
                self._first_stall = ev.t
        elif kind is RunStart:
            assert isinstance(ev, RunStart)
            self._open[ev.run_id] = ev
            if self._first_run_start is None:
                self._first_run_start = ev.t
        elif kind is RunEnd:
            assert isinstance(ev, RunEnd)
            if self._first_run_end is None:
                self._first_run_end = ev.t
            self._last_run_end = ev.t
            begun = self._open.pop(ev.run_id, None)
            r = ev.result
            self._runs.append(RunSpan(
                ev.run_id, r.workload, r.mode, begun.t if begun is not None else None, ev.t,
                r.outcome, r.wall_s,
            ))

    def runs(self) -> list[RunSpan]:
        """Every run so far, in the order it started; unfinished ones with no end."""
        runs = self._runs + [
            RunSpan(ev.run_id, ev.workload, ev.mode, ev.t, None) for ev in self._open.values()
        ]
        runs.sort(key=lambda r: r.start if r.start is not None else (r.end or 0.0))
        return runs

    def index(self, path: str, header: Header) -> Index:
        runs = self.runs()
        freeze = self._first_freeze
        return Index(
            path=path,
            header=header,
            events=self.events,
            first=self.first if self.events else None,
            last=self.last if self.events else None,
            incidents=tuple(sorted(self.incidents)),
            freezes=self.freezes,
            stalls=self.stalls,
            runs=tuple(runs),
            first_freeze=None if freeze is None else (freeze.t, self._first_freeze_end),
            first_stall=self._first_stall,
            first_run_start=self._first_run_start,
            first_run_end=self._first_run_end,
            last_run_end=self._last_run_end,
            os_samples=self.os_samples,
        )


def scan(path: str | Path) -> Index:
    """Read and check a whole recording, keeping its index; RecordingError for any problem."""
    with RecordingReader(path) as reader:
        indexer = Indexer()
        for ev in reader:
            indexer.add(ev)
        return indexer.index(reader.path, reader.header)


def index_events(events: Iterable[Event], header: Header, path: str = "") -> Index:
    """The index of events already in memory (a test's, or a talk scene's)."""
    indexer = Indexer()
    for ev in events:
        indexer.add(ev)
    return indexer.index(path, header)
