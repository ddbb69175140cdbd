"""The flight recorder, after Go 1.25's ``runtime/trace.FlightRecorder``: the last N seconds of
what the probes saw, kept in memory, written out as a recording when something went wrong.

It keeps the very batches the streamer would send a viewer (raw step records, spawns, events as
JSON lines), so keeping them costs an append and a trim, and nothing is decoded until a dump is
asked for. A dump writes the recording format (:mod:`cpviz.engine.recording`), so ``cpviz
replay`` opens it and ``cpviz replay --check`` checks it. Bounded twice: by age and by bytes.
Standard library only: it runs inside the application.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cpviz.engine.events import (
    Event,
    IncidentRecord,
    RunEnd,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.recording import Header, decode_event, encode_lines
from cpviz.engine.wire import (
    EVENTS,
    HEADER,
    SPAWNS,
    STEPS,
    decode_spawns,
    decode_steps,
    with_unique_ids,
)

#: Spawns of tasks whose batch aged out, kept to name those tasks' later steps in a dump.
KNOWN_TASKS = 50_000


def iter_frames(blob: bytes) -> Iterator[tuple[int, bytes]]:
    """The frames of one streamer batch (whole frames, as the streamer makes them)."""
    at, size = 0, len(blob)
    while at + HEADER.size <= size:
        length, kind = HEADER.unpack_from(blob, at)
        start = at + HEADER.size
        yield kind, blob[start:start + length]
        at = start + length


def decode_batch(blob: bytes, origin: float, out: list[Event]) -> None:
    """The events a batch holds, on the session clock (thread roles and marks are left out)."""
    for kind, payload in iter_frames(blob):
        if kind == STEPS:
            decode_steps(payload, origin, out)
        elif kind == SPAWNS:
            decode_spawns(payload, origin, out)
        elif kind == EVENTS:
            out.extend(decode_event(json.loads(line)) for line in payload.decode().splitlines())


@dataclass(frozen=True)
class Window:
    """What a dump writes: the batches kept, and how to name what they refer to."""

    #: (session time of the flush, process CPU seconds then, the batch).
    batches: tuple[tuple[float, float, bytes], ...]
    #: Task id → spawn, for tasks spawned before the oldest batch kept.
    known: dict[int, TaskSpawn]


class FlightRecorder:
    """The last ``seconds`` of the stream, at most ``max_bytes`` of it."""

    def __init__(self, seconds: float, max_bytes: int, origin: float) -> None:
        if seconds <= 0 or max_bytes <= 0:
            raise ValueError("a flight recorder keeps a positive number of seconds and bytes")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.origin = origin
        self._batches: deque[tuple[float, float, bytes]] = deque()
        self._bytes = 0
        self._known: dict[int, TaskSpawn] = {}
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._bytes

    def add(self, t: float, cpu: float, blob: bytes) -> None:
        """Keep one batch flushed at session time ``t`` and drop what fell out of the window."""
        with self._lock:
            self._batches.append((t, cpu, blob))
            self._bytes += len(blob)
            batches = self._batches
            while len(batches) > 1 and (batches[0][0] < t - self.seconds
                                        or self._bytes > self.max_bytes):
                _, _, old = batches.popleft()
                self._bytes -= len(old)
                self._remember(old)

    def _remember(self, blob: bytes) -> None:
        """Keep the spawns of a batch that ages out: their tasks may still step later."""
        spawns: list[Event] = []
        for kind, payload in iter_frames(blob):
            if kind == SPAWNS:
                decode_spawns(payload, self.origin, spawns)
        known = self._known
        for spawn in spawns:
            assert isinstance(spawn, TaskSpawn)
            known.pop(spawn.task_id, None)
            known[spawn.task_id] = spawn
        while len(known) > KNOWN_TASKS:
            del known[next(iter(known))]

    def window(self) -> Window:
        with self._lock:
            return Window(tuple(self._batches), dict(self._known))


def write(path: str, window: Window, *, origin: float, cores: int, name: str,
          params: tuple[tuple[str, Any], ...], now: float, cpu_now: float,
          live: dict[int, str], command: str,
          incidents: tuple[IncidentRecord, ...] = ()) -> int:
    """Write ``window`` as a recording at ``path`` (gzip if it ends in .gz); events written.

    The window holds one run, the application as it ran, with its CPU from the kernel's
    accounting of this process. Tasks that stepped in the window but were spawned before it
    are named from the spawns remembered, or from ``live`` (task id → name of live tasks), and
    start at the window's start.
    """
    events: list[Event] = []
    for _t, _cpu, blob in window.batches:
        decode_batch(blob, origin, events)
    start = min((_time(e) for e in events), default=now)
    start = max(0.0, min(start, window.batches[0][0] if window.batches else now))
    spawned = {e.task_id for e in events if isinstance(e, TaskSpawn)}
    missing: dict[int, TaskSpawn] = {}
    for e in events:
        if isinstance(e, TaskStep) and e.task_id not in spawned and e.task_id not in missing:
            known = window.known.get(e.task_id)
            if known is not None:
                missing[e.task_id] = TaskSpawn(start, known.task_id, known.name, known.run_id,
                                               known.parent_id)
            elif e.task_id in live:
                missing[e.task_id] = TaskSpawn(start, e.task_id, live[e.task_id], 1, 0)
    cpu0 = window.batches[0][1] if window.batches else cpu_now
    wall = max(now - start, 1e-9)
    cpu = max(0.0, cpu_now - cpu0)
    result = RunResult(name, "program", params, wall, cpu, cpu / wall, None, None, incidents,
                       "flight recording", extra=(("flight_window_s", round(wall, 3)),))
    head: list[Event] = [RunStart(start, 1, name, "program", params, 0), *missing.values()]
    body = with_unique_ids([*head, *events, RunEnd(max(now, start), 1, result)])
    header = Header.now(cores, start, (), command)
    text = json.dumps(header.encode(), separators=(",", ":")) + "\n" + encode_lines(body)
    data = text.encode("utf-8")
    tmp = f"{path}.{os.getpid()}.part"
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(tmp, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
    return len(body)


def _time(event: Event) -> float:
    return float(getattr(event, "ready", getattr(event, "t", 0.0)))
