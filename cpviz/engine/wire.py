"""The channel's wire format: length-prefixed frames on a private local socket.

The observed process must pay as little as possible for being watched, so task steps cross as
the tracer's raw ring records (four doubles each, a whole batch in one frame) and are turned into
:class:`~cpviz.engine.events.TaskStep` objects only in the viewer. Every other event crosses as
the recording format's own JSON line (:mod:`cpviz.engine.recording`), so a recording is the
decoded channel stream, line for line. Commands travel the other way as small JSON objects.

Standard library only: both ends import it, and the observed end must not load Textual.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
import struct
import sys
import threading
from array import array
from collections.abc import Iterator
from typing import Any

from cpviz.engine.events import Event, IncidentStart, TaskSpawn, TaskStep

#: Frame header: payload length (little-endian uint32), then one byte saying what it holds.
HEADER = struct.Struct("<IB")
#: The largest frame either end accepts; a longer one means the stream is corrupt.
MAX_FRAME = 64 << 20

# Observed → viewer.
#: Raw task-step records: doubles in fours (signed task id, ready, start, end; perf_counter).
STEPS = 1
#: Events as JSON Lines, in the recording format.
EVENTS = 2
#: An accounting mark, sent the moment a run starts or ends: {"run": id, "at": "start"|"end"}.
MARK = 3
#: The observed process's threads: [[native id, name, role], ...].
THREADS = 4
#: The observed side is ready: {"pid": ..., "python": ..., "gil": ...}.
HELLO = 5
#: The observed side could not start: {"error": "one line"}.
FATAL = 6
# Viewer → observed.
#: Task spawns: doubles in fours (perf_counter time, task id, run id, parent id), then their
#: names, NUL-separated.
SPAWNS = 7
#: A command: {"op": "start" | "stop" | "adjust" | "pin" | "quit", ...}.
COMMAND = 16

#: Environment variable through which the observed process finds its end of the channel.
CHANNEL_FD_ENV = "CPVIZ_CHANNEL_FD"
#: Doubles per step record, as the tracer's ring lays them out.
STRIDE = 4


class ChannelClosed(Exception):
    """The other end went away (or the stream was corrupt, which is treated the same)."""


def frame(kind: int, payload: bytes) -> bytes:
    """One frame, ready to send."""
    return HEADER.pack(len(payload), kind) + payload


def json_frame(kind: int, obj: Any) -> bytes:
    return frame(kind, json.dumps(obj, separators=(",", ":")).encode())


class Sender:
    """Writes whole frames from any thread: one lock, so frames never interleave."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.closed = False

    def send(self, data: bytes) -> bool:
        """Send frames; False (and nothing raised) once the other end has gone."""
        if self.closed:
            return False
        with self._lock:
            try:
                self._sock.sendall(data)
            except OSError:
                self.closed = True
                return False
        return True


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL (always, before free-threaded builds)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return bool(probe()) if probe is not None else True


def hello(**more: Any) -> bytes:
    """The HELLO frame every observed side sends first: this process and its interpreter (the
    run's JSON names both), then what that side adds."""
    return json_frame(HELLO, {
        "pid": os.getpid(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "gil": gil_enabled(),
        **more,
    })


def read_frames(sock: socket.socket, chunk: int = 1 << 18) -> Iterator[tuple[int, bytes]]:
    """Every frame the socket delivers, until the other end closes it.

    Raises ChannelClosed on a frame that cannot be right (too long): the stream is private, so
    that only happens when something wrote into it that should not have.
    """
    pending = bytearray()
    need = HEADER.size
    # One buffer for every read. recv(chunk) would make a fresh 256 KiB object each time; once
    # glibc stops giving such blocks their own mmap, each one comes from this thread's arena
    # between frames still waiting to be decoded, and the arena grows without end (the soak's
    # viewer RSS rose 0.4-0.9 MB a minute with no Python object growing).
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        try:
            got = sock.recv_into(buf)
        except OSError:
            return
        if not got:
            return
        pending += view[:got]
        while len(pending) >= need:
            length, kind = HEADER.unpack_from(pending)
            if length > MAX_FRAME:
                raise ChannelClosed(f"a frame of {length} bytes: the channel is corrupt")
            end = HEADER.size + length
            if len(pending) < end:
                need = end
                break
            yield kind, bytes(pending[HEADER.size:end])
            del pending[:end]
            need = HEADER.size


class TaskIds:
    """The tracer's task ids made unique for the session.

    The tracer names a task by its address (``id(task)``): the cheapest name there is, but one
    the interpreter hands to a new task once the old one is freed. A server that runs one short
    task per request reuses a handful of addresses, and each new task would take the row, and
    the history, of the one before. Decoded in production order, a spawn always comes after
    the last step of the task whose address it reuses, so each spawn simply starts a new id.
    """

    def __init__(self) -> None:
        self._ids: dict[int, int] = {}
        self._next = 1

    def spawned(self, raw: int) -> int:
        new = self._ids[raw] = self._next
        self._next += 1
        return new

    def of(self, raw: int) -> int:
        """The id of the task at ``raw`` now (a task never seen spawned gets one here)."""
        got = self._ids.get(raw)
        return got if got is not None else self.spawned(raw)

    def parent(self, raw: int) -> int:
        return self._ids.get(raw, 0) if raw else 0

    def forget(self) -> None:
        """A new process: its addresses say nothing about the last one's."""
        self._ids.clear()


def with_unique_ids(events: list[Event]) -> list[Event]:
    """``events`` in production order, with the tracer's task ids made unique (as the viewer
    does while decoding the channel), for a recording made from raw records elsewhere."""
    ids = TaskIds()
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, TaskSpawn):
            parent = ids.parent(ev.parent_id)
            ev = dataclasses.replace(ev, task_id=ids.spawned(ev.task_id), parent_id=parent)
        elif isinstance(ev, TaskStep | IncidentStart) and ev.task_id:
            ev = dataclasses.replace(ev, task_id=ids.of(ev.task_id))
        out.append(ev)
    return out


def steps_from_raw(
    values: array[float] | list[float], origin: float, out: list[Event], first: int = 0,
    stop: int | None = None, ids: TaskIds | None = None,
) -> None:
    """Append the TaskSteps that raw ring records ``[first, stop)`` hold, on the session clock.

    A negative task id marks the task's last step (the tracer folds the done flag into the sign).
    """
    append = out.append
    stop = len(values) // STRIDE if stop is None else stop
    of = ids.of if ids is not None else int
    for n in range(first, stop):
        i = n * STRIDE
        tid = values[i]
        if tid > 0:
            append(TaskStep(of(int(tid)), values[i + 1] - origin, values[i + 2] - origin,
                            values[i + 3] - origin))
        else:
            append(TaskStep(of(int(-tid)), values[i + 1] - origin, values[i + 2] - origin,
                            values[i + 3] - origin, True))


def decode_steps(payload: bytes, origin: float, out: list[Event],
                 ids: TaskIds | None = None) -> None:
    """The TaskSteps of one STEPS frame."""
    values = array("d")
    values.frombytes(payload[: len(payload) - len(payload) % (8 * STRIDE)])
    steps_from_raw(values, origin, out, ids=ids)


_COUNT = struct.Struct("<I")


def encode_spawns(spawns: list[tuple[float, int, str, int, int]]) -> bytes:
    """One SPAWNS frame's payload: how many, the numbers raw, then the names."""
    values = array("d", [x for at, task_id, _name, run, parent in spawns
                         for x in (at, task_id, run, parent)])
    names = "\0".join([name for _, _, name, _, _ in spawns])
    if names.count("\0") != len(spawns) - 1:  # a name with a NUL in it: the one separator
        names = "\0".join([name.replace("\0", " ") for _, _, name, _, _ in spawns])
    return _COUNT.pack(len(spawns)) + values.tobytes() + names.encode()


def decode_spawns(payload: bytes, origin: float, out: list[Event],
                  ids: TaskIds | None = None) -> None:
    """The TaskSpawns of one SPAWNS frame."""
    (count,) = _COUNT.unpack_from(payload)
    end = _COUNT.size + count * 8 * STRIDE
    values = array("d")
    values.frombytes(payload[_COUNT.size : end])
    names = payload[end:].decode(errors="replace").split("\0") if count else []
    if len(values) != count * STRIDE or len(names) != count:
        raise ChannelClosed("a spawn frame that does not add up: the channel is corrupt")
    for i in range(count):
        j = i * STRIDE
        task, parent = int(values[j + 1]), int(values[j + 3])
        if ids is not None:
            parent = ids.parent(parent)  # before the child's own, should it reuse its address
            task = ids.spawned(task)
        out.append(TaskSpawn(values[j] - origin, task, names[i], int(values[j + 2]), parent))
