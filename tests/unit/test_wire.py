"""The channel's frames: what the observed side sends is what the viewer decodes."""

from __future__ import annotations

import socket
import threading
from array import array

import pytest

from cpviz.engine.events import Event, TaskSpawn, TaskStep
from cpviz.engine.wire import (
    EVENTS,
    MAX_FRAME,
    STEPS,
    ChannelClosed,
    Sender,
    TaskIds,
    decode_spawns,
    decode_steps,
    encode_spawns,
    frame,
    read_frames,
    with_unique_ids,
)


def test_spawns_cross_whole_names_included() -> None:
    spawns = [(10.5, 123, "fetch", 1, 0), (11.0, 456, "Handler.serve", 2, 123),
              (11.5, 789, "", 0, 0), (12.0, 1, "odd\0name", 1, 0)]
    out: list[Event] = []
    decode_spawns(encode_spawns(spawns), 10.0, out)
    assert out == [
        TaskSpawn(0.5, 123, "fetch", 1, 0),
        TaskSpawn(1.0, 456, "Handler.serve", 2, 123),
        TaskSpawn(1.5, 789, "", 0, 0),
        TaskSpawn(2.0, 1, "odd name", 1, 0),  # a NUL in a name cannot split the frame
    ]
    out.clear()
    decode_spawns(encode_spawns([]), 0.0, out)
    assert out == []


def test_raw_step_records_decode_with_the_final_flag_from_the_sign() -> None:
    raw = array("d", [7, 1.0, 1.5, 2.0, -7, 3.0, 3.25, 3.5]).tobytes()
    out: list[Event] = []
    decode_steps(raw, 1.0, out)
    assert out == [TaskStep(7, 0.0, 0.5, 1.0), TaskStep(7, 2.0, 2.25, 2.5, True)]


def test_a_reused_task_address_starts_a_new_task_with_its_own_history() -> None:
    """A server's short tasks, one after another, each freed before the next is made: the
    interpreter gives each the same address, and each must keep a row and steps of its own."""
    ids = TaskIds()
    out: list[Event] = []
    for n in range(3):
        decode_spawns(encode_spawns([(10.0 + n, 500, "handle", 1, 42)]), 10.0, out, ids)
        raw = array("d", [500, 10.0 + n, 10.1 + n, 10.2 + n,
                          -500, 10.3 + n, 10.4 + n, 10.5 + n]).tobytes()
        decode_steps(raw, 10.0, out, ids)
    spawns = [e for e in out if isinstance(e, TaskSpawn)]
    steps = [e for e in out if isinstance(e, TaskStep)]
    assert len({s.task_id for s in spawns}) == 3
    assert [s.task_id for s in steps] == [spawns[0].task_id] * 2 + [spawns[1].task_id] * 2 + [
        spawns[2].task_id] * 2
    # The parent, never seen spawned, is not mistaken for a task of this session.
    assert {s.parent_id for s in spawns} == {0}
    # Decoded once more from the events themselves (as the flight recorder writes them).
    raw_events: list[Event] = [TaskSpawn(0.0, 500, "a", 1, 0), TaskStep(500, 0, 0.1, 0.2, True),
                               TaskSpawn(1.0, 500, "b", 1, 0), TaskStep(500, 1, 1.1, 1.2)]
    again = with_unique_ids(raw_events)
    assert [e.task_id for e in again if isinstance(e, TaskSpawn | TaskStep)] == [1, 1, 2, 2]


def test_frames_arrive_whole_however_the_socket_cuts_them() -> None:
    a, b = socket.socketpair()
    payloads = [(STEPS, bytes(range(256)) * 40), (EVENTS, b'{"type":"x"}\n'), (EVENTS, b"")]
    sender = Sender(a)

    def send() -> None:
        data = b"".join(frame(kind, payload) for kind, payload in payloads)
        for i in range(0, len(data), 7):  # in dribbles, as a busy socket may
            sender.send(data[i : i + 7])
        a.close()

    thread = threading.Thread(target=send)
    thread.start()
    try:
        assert list(read_frames(b)) == payloads
    finally:
        thread.join(timeout=10)
        b.close()


def test_every_read_lands_in_one_reused_buffer() -> None:
    """A fresh receive buffer per read grew the viewer's malloc arena without end (its RSS
    rose steadily in the soak while no Python object grew): reads go into one buffer."""
    data = frame(STEPS, b"x" * 1000) + frame(EVENTS, b"{}")
    buffers: list[int] = []

    class Socket:
        at = 0

        def recv(self, n: int) -> bytes:
            raise AssertionError("a new buffer per read")

        def recv_into(self, buf: bytearray) -> int:
            buffers.append(id(buf))
            piece = data[self.at : self.at + 300]
            buf[: len(piece)] = piece
            self.at += len(piece)
            return len(piece)

    got = list(read_frames(Socket(), chunk=512))  # type: ignore[arg-type]
    assert got == [(STEPS, b"x" * 1000), (EVENTS, b"{}")]
    assert len(buffers) > 2 and len(set(buffers)) == 1


def test_a_frame_too_long_to_be_true_ends_the_channel() -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(frame(EVENTS, b"")[:0] + (MAX_FRAME + 1).to_bytes(4, "little") + bytes([2]))
        with pytest.raises(ChannelClosed):
            list(read_frames(b))
    finally:
        a.close()
        b.close()
