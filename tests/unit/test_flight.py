"""The flight recorder keeps a bounded window of the stream and writes it as a recording that
the reader accepts, line for line, as ``cpviz replay`` would. No process, no real clock: the
batches are made here as the streamer makes them."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from cpviz.agent.flight import FlightRecorder, write
from cpviz.engine.events import IncidentEnd, IncidentStart, LoopLag, RunEnd, TaskSpawn, TaskStep
from cpviz.engine.recording import encode_lines, load
from cpviz.engine.recording.index import scan
from cpviz.engine.wire import EVENTS, SPAWNS, STEPS, encode_spawns, frame

ORIGIN = 1000.0


def _batch(t: float, task: int, *, spawn: bool = False, final: bool = False) -> bytes:
    """One streamer batch at session time ``t``: maybe a spawn, one step, one lag event."""
    out = bytearray()
    if spawn:
        out += frame(SPAWNS, encode_spawns([(ORIGIN + t, task, f"task{task}", 1, 0)]))
    steps = array("d", [-task if final else task, ORIGIN + t, ORIGIN + t + 0.001,
                        ORIGIN + t + 0.002])
    out += frame(STEPS, steps.tobytes())
    out += frame(EVENTS, encode_lines([LoopLag(t, 0.001)]).encode())
    return bytes(out)


def test_the_window_is_bounded_by_age_and_by_bytes() -> None:
    recorder = FlightRecorder(seconds=1.0, max_bytes=10_000_000, origin=ORIGIN)
    for i in range(100):
        recorder.add(i * 0.1, 0.0, _batch(i * 0.1, 7, spawn=i == 0))
    window = recorder.window()
    assert window.batches[0][0] >= 9.9 - 1.0 - 1e-9
    # The task's spawn aged out, but it is remembered to name its later steps.
    assert window.known[7].name == "task7"
    small = FlightRecorder(seconds=1000.0, max_bytes=2_000, origin=ORIGIN)
    for i in range(100):
        small.add(float(i), 0.0, _batch(float(i), 1))
    assert small.size <= 2_000 + len(_batch(0.0, 1))


def test_a_dump_reads_back_as_a_valid_recording(tmp_path: Path) -> None:
    recorder = FlightRecorder(seconds=2.0, max_bytes=10_000_000, origin=ORIGIN)
    recorder.add(0.5, 0.1, _batch(0.5, 5, spawn=True))  # ages out; its task steps on
    for i in range(10, 30):
        recorder.add(i * 0.1, 0.1 + i * 0.01, _batch(i * 0.1, 5, final=i == 29))
    freeze = IncidentStart(3.0, 2, 2.8, None, None)
    recorder.add(3.05, 0.5, frame(EVENTS, encode_lines([freeze, IncidentEnd(3.1, 2, 0.3)])
                                  .encode()))
    path = tmp_path / "flight.jsonl.gz"
    window = recorder.window()
    count = write(str(path), window, origin=ORIGIN, cores=2, name="app.py",
                  params=(("argv", "app.py"),), now=3.2, cpu_now=0.6, live={},
                  command="test")
    recording = load(path)  # every line checked against the header
    assert len(recording.events) == count
    kinds = [type(e) for e in recording.events]
    assert kinds[0].__name__ == "RunStart" and kinds[-1] is RunEnd
    spawn = next(e for e in recording.events if isinstance(e, TaskSpawn))
    assert spawn.name == "task5" and spawn.t <= min(
        e.ready for e in recording.events if isinstance(e, TaskStep))
    end = recording.events[-1]
    assert isinstance(end, RunEnd) and end.result.cpu_s == pytest.approx(0.6 - window.batches[0][1])
    index = scan(str(path))
    assert index.freezes == 1 and len(index.runs) == 1


def test_it_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError):
        FlightRecorder(seconds=0, max_bytes=1, origin=0.0)
