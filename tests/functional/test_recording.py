"""Recordings: every event comes back equal, the cap holds, and every bad file is one clear line."""

from __future__ import annotations

import enum
import gzip
import json
import math
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cpviz.cli import main
from cpviz.engine.clock import ManualClock
from cpviz.engine.contract import ParamInfo, WorkloadInfo
from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentRecord,
    IncidentStart,
    LoopLag,
    Metric,
    Observed,
    OsRowName,
    OsSamples,
    Output,
    Phase,
    Placement,
    RunEnd,
    RunProgress,
    RunResult,
    RunStart,
    StallEnd,
    StallStart,
    StreamGap,
    SweepPoint,
    TaskSpawn,
    TaskStep,
    Waiter,
)
from cpviz.engine.headless import run_to_end
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from cpviz.engine.recording import (
    EVENT_TYPES,
    MAX_LINE_BYTES,
    Header,
    Recorder,
    RecordingError,
    RecordingReader,
    decode_event,
    encode_lines,
    load,
)
from cpviz.engine.recording import recorder as recorder_module
from cpviz.engine.stream import EventStream
from cpviz.workloads.registry import catalogue
from tests.paths import FIXTURES

CULPRIT = Frame("/src/app.py", 42, "handler", "time.sleep(0.3)  # :True, \"quoted\"", "user")


def every_event() -> list[Event]:
    """One or more of every event type, with the awkward values each field can hold."""
    result = RunResult(
        workload="io",
        mode="concurrent",
        params=(("n", 50), ("latency_ms", 200.0), ("real", False), ("label", "ünïcode ✓")),
        wall_s=0.21,
        cpu_s=0.013,
        parallelism=0.0619,
        speedup=47.6,
        speedup_basis="exact: N × L",
        incidents=(
            IncidentRecord(0.05, 0.3, "/src/app.py", 42, "handler", "time.sleep(0.3)", "sleep"),
            IncidentRecord(0.5, 0.1, None, None, None, None),
        ),
        outcome="completed",
        tasks=51,
        steps=104,
        extra=(
            ("max_loop_lag_s", 0.0121),
            ("latencies", [0.1, 0.2, None]),
            ("pair", (1, "two")),
            ("nested", {"a": [1, (2, 3)], "b": {"c": True}}),
            ("none", None),
        ),
    )
    return [
        TaskSpawn(0.001, 140540862005504, "io:concurrent", 1, 0),
        TaskSpawn(0.002, 2, 'call 1 "quoted" :True,', 1, 140540862005504),
        TaskStep(140540862005504, 0.0009, 0.0011, 0.0013),
        TaskStep(2, 0.002, 0.0021, 0.0025, True),
        CoreSample(0.1, (12.5, 100.0), (
            Placement("loop", 4242, 0, 55.0, "cpviz-lab"),
            Placement("process", 999, -1, 0.0),
        ), 17),
        CoreSample(0.2, (0.0, 0.0)),
        IncidentStart(0.4, 1, 0.1, CULPRIT, "time.sleep", (
            Frame("/usr/lib/python3.11/asyncio/events.py", 80, "_run", "", "library"),
            CULPRIT,
        ), 2),
        IncidentStart(0.9, 2, 0.75, None, None),
        IncidentEnd(0.7, 1, 0.6),
        LoopLag(0.8, 0.0123),
        RunStart(0.0, 1, "io", "concurrent", result.params, 50),
        RunStart(0.0, 2, "cpu", "loop", ()),
        RunProgress(0.5, 1, 25, 50),
        RunEnd(1.0, 1, result),
        StreamGap(1.1, 12),
        Metric(1.2, 1, "queue depth", 3),
        Metric(1.25, 1, "p99 ms", 12.75),
        SweepPoint(1.3, 1, 4.0, (("speedup", 2.9), ("amdahl", 3.08))),
        Phase(1.4, 1, "startup", 1.1, "spawn, 2 workers"),
        Phase(1.45, 1, "warm-up", 1.42),
        StallStart(1.5, 1, 7, 1.2, (
            Waiter("task", "philosopher 1", CULPRIT, "lock_b", "philosopher 2"),
            Waiter("thread", "worker-3", None),
        )),
        StallEnd(1.6, 1, 7),
        Observed(1.7, 4242, "started", "CPython 3.11.7, GIL on"),
        Observed(1.8, 4242, "exited", "killed by SIGSEGV: Fatal Python error", -11),
        Output(1.85, "fetching 50 ✓ \t done"),
        OsSamples(1.9, (10000, 10000), ((101, "Z001."), (102, "000~")), ((300, "~9Q0(200)"),),
                  (OsRowName("thread", 101, "worker ✓", "thread"),
                   OsRowName("process", 300, "python 300", "process", "no futex"))),
    ]


def header(workloads: tuple[WorkloadInfo, ...] = ()) -> Header:
    return Header.now(2, 0.0, workloads, "cpviz test")


def infos() -> tuple[WorkloadInfo, ...]:
    return (
        WorkloadInfo("io", "I/O fan-out", ("concurrent", "serial"), (
            ParamInfo("n", "int", 1000, 1, 20000, "calls"),
            ParamInfo("real", "bool", False, None, None, "real HTTP"),
            ParamInfo("latency_ms", "float", 200.0, 1.0, 10000.0, "latency", live=True),
        ), "What to look at."),
    )


def write_lines(path: Path, *lines: str, end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def header_line(**changes: object) -> str:
    obj = header().encode()
    obj.update(changes)
    return json.dumps(obj)


# -- round trips --------------------------------------------------------------------------------


def test_the_hand_built_events_cover_every_event_type() -> None:
    assert {type(ev).__name__ for ev in every_event()} == set(EVENT_TYPES)


def test_every_event_type_encodes_to_json_and_decodes_equal() -> None:
    events = every_event()
    text = encode_lines(events)
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == len(events)
    for line, original in zip(lines, events, strict=True):
        obj = json.loads(line)
        assert obj["type"] == type(original).__name__
        decoded = decode_event(obj)
        assert decoded == original
        assert type(decoded) is type(original)
    # Tuples stay tuples and lists stay lists inside free-form values.
    end = decode_event(json.loads(lines[13]))
    assert isinstance(end, RunEnd)
    extra = dict(end.result.extra)
    assert extra["pair"] == (1, "two") and isinstance(extra["pair"], tuple)
    assert extra["latencies"] == [0.1, 0.2, None] and isinstance(extra["latencies"], list)
    assert extra["nested"] == {"a": [1, (2, 3)], "b": {"c": True}}


def test_not_a_number_is_written_as_json_the_reader_accepts() -> None:
    text = encode_lines([LoopLag(1.0, math.nan), LoopLag(2.0, math.inf)])
    first, second = (decode_event(json.loads(line)) for line in text.splitlines())
    assert isinstance(first, LoopLag) and math.isnan(first.lag_s)
    assert second == LoopLag(2.0, math.inf)


class _Count:
    """An integer of another kind, as numpy's are: not an int, but it has __index__."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


class _Kind(enum.IntEnum):
    A = 7


def test_numbers_of_other_kinds_are_written_as_numbers() -> None:
    events: list[Event] = [
        RunProgress(1.0, 1, _Count(5), _Kind.A),  # type: ignore[arg-type]
        Metric(2.0, 1, "depth", _Count(3)),  # type: ignore[arg-type]
    ]
    decoded = [decode_event(json.loads(line)) for line in encode_lines(events).splitlines()]
    assert decoded == [RunProgress(1.0, 1, 5, 7), Metric(2.0, 1, "depth", 3.0)]


@pytest.mark.parametrize("name", ["every.jsonl", "every.jsonl.gz"])
def test_a_recorder_writes_what_it_is_tapped_and_the_reader_gives_it_back(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    events = every_event()
    recorder = Recorder(path, header(infos()), flush_s=0.01)
    recorder.tap(events[:5])
    recorder.tap(events[5:])
    status = recorder.close()
    assert status.closed and status.message is None and not status.capped
    assert status.events == len(events)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b'{"')
    recording = load(path)
    assert list(recording.events) == events
    assert recording.header.workloads == infos()
    assert recording.header.cores == 2 and recording.header.command == "cpviz test"


def test_the_header_says_what_made_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    Recorder(path, header(infos())).close()
    first = json.loads(path.read_text().splitlines()[0])
    assert first["format"] == "cpviz-recording" and first["version"] == 1
    for key in ("cpviz", "platform", "python", "cores", "started", "workloads"):
        assert key in first
    assert load(path).events == ()


def test_the_stream_tap_sees_exactly_each_drained_batch() -> None:
    stream = EventStream(ManualClock(), capacity=2)
    seen: list[list[Event]] = []
    stream.add_tap(seen.append)
    stream.put(LoopLag(0.1, 0.0))
    stream.put(LoopLag(0.2, 0.0))
    stream.put(LoopLag(0.3, 0.0))  # dropped: the stream holds two
    batch = stream.drain()
    assert seen == [batch]
    assert isinstance(batch[-1], StreamGap) and batch[-1].dropped == 1
    assert stream.drain() == [] and len(seen) == 1  # empty drains are not handed on
    stream.remove_tap(seen.append)
    stream.put(LoopLag(0.4, 0.0))
    stream.drain()
    assert len(seen) == 1


@pytest.fixture(scope="module")
def live_recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Event], Path]]:
    """Real runs recorded from a real lab, with the batches the Model was given live."""
    path = tmp_path_factory.mktemp("rec") / "live.jsonl.gz"
    lab = ObservedLab(catalogue(), sample_hz=20)
    recorder = Recorder(path, Header.now(lab.cores, lab.clock.now(), lab.workloads()))
    live: list[Event] = []

    def seen(batch: list[Event]) -> None:
        live.extend(batch)

    lab.stream.add_tap(recorder.tap)
    lab.stream.add_tap(seen)
    model = Model(lab.cores)
    try:
        lab.start()
        for key, mode, settings in (
            ("io", "concurrent", {"n": 20, "latency_ms": 50}),
            ("blocking", "sync-sleep", {"duration_s": 0.5, "tickers": 2, "block_ms": 150,
                                        "period_ms": 300}),
        ):
            run_to_end(lab, model, lab.launch(key, mode, settings), timeout=60)
        time.sleep(0.1)
        lab.stream.drain()
    finally:
        lab.close()
        lab.stream.drain()
        recorder.close()
    yield live, path


def test_a_recording_of_real_runs_reads_back_equal_in_the_order_the_model_saw(
    live_recording: tuple[list[Event], Path],
) -> None:
    live, path = live_recording
    recording = load(path)
    assert list(recording.events) == live
    kinds = {type(ev) for ev in live}
    assert {TaskSpawn, TaskStep, CoreSample, RunStart, RunEnd, IncidentStart} <= kinds


def test_nothing_of_the_recorder_is_left_running(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "x.jsonl.gz", header())
    recorder.tap(every_event())
    recorder.close()
    assert recorder._proc.poll() == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("cpviz-recorder")]
    assert recorder.close().closed  # closing twice is harmless


def _wait_for(condition: object, what: str) -> None:
    """Poll until ``condition()`` holds; a generous limit, only so a broken writer fails."""
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_what_was_tapped_is_on_disk_while_the_recording_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "open.jsonl.gz"
    recorder = Recorder(path, header(), flush_s=0.01)
    try:
        events = every_event()
        recorder.tap(events)
        _wait_for(lambda: recorder.status.events == len(events), "the writer to catch up")
        # A crash now would leave this: readable up to the last flush, without a gzip trailer.
        text = zlib.decompressobj(wbits=31).decompress(path.read_bytes()).decode()
        lines = text.splitlines()
        assert len(lines) == 1 + len(events)
        assert [decode_event(json.loads(line)) for line in lines[1:]] == events
    finally:
        recorder.close()


def test_a_writer_that_falls_far_behind_drops_batches_and_says_so_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Patched where Recorder.tap reads it, not on the package that re-exports it.
    monkeypatch.setattr(recorder_module, "MAX_PENDING_EVENTS", 10)
    path = tmp_path / "behind.jsonl"
    recorder = Recorder(path, header(), flush_s=3600)  # the packer waits until close
    first = [LoopLag(i * 0.1, 0.0) for i in range(8)]
    recorder.tap(first)
    recorder.tap([LoopLag(1.0, 0.0), LoopLag(1.1, 0.0), LoopLag(1.2, 0.0)])  # over the limit
    recorder.close()
    events = list(load(path).events)
    assert events == [*first, StreamGap(1.2, 3)]


# -- the size cap ---------------------------------------------------------------------------------


def test_the_size_cap_stops_writing_cleanly_and_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "capped.jsonl"
    head = len(json.dumps(header().encode(), separators=(",", ":"))) + 1
    cap = head + 2_000
    recorder = Recorder(path, header(), max_bytes=cap, flush_s=0.01)
    steps: list[Event] = [TaskStep(i, i * 0.001, i * 0.001, i * 0.001 + 1e-4) for i in range(100)]
    for i in range(0, 100, 10):
        recorder.tap(steps[i : i + 10])
    status = recorder.close()
    assert status.capped
    assert status.message is not None and "size cap" in status.message
    assert str(path) in status.message
    assert path.stat().st_size <= cap
    recording = load(path)  # finished cleanly: every line whole
    assert 0 < len(recording.events) == status.events < 100
    assert list(recording.events) == steps[: status.events]


def test_run_with_a_tiny_cap_warns_on_one_line_and_still_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.jsonl.gz"
    code = main(["run", "io", "--set", "n=300", "--set", "latency_ms=20", "--json",
                 "--record", str(path), "--record-max-mb", "0.03"])
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["outcome"] == "completed"
    warnings = [line for line in err.splitlines() if line.startswith("cpviz: warning:")]
    assert len(warnings) == 1 and "size cap of 0.03 MB" in warnings[0]
    assert load(path).events  # whatever was written reads back


def test_run_records_its_whole_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "io.jsonl"
    code = main(["run", "io", "--set", "n=10", "--set", "latency_ms=10", "--json",
                 "--record", str(path)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    recording = load(path)
    ends = [ev for ev in recording.events if isinstance(ev, RunEnd)]
    assert len(ends) == 1 and ends[0].result.outcome == "completed"
    assert ends[0].result.wall_s == pytest.approx(result["wall_s"], abs=1e-6)
    assert recording.header.command.startswith("cpviz run io")
    assert "io" in {w.key for w in recording.header.workloads}


def test_record_may_come_before_the_run_command_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "before.jsonl"
    assert main(["--record", str(path), "run", "io", "--set", "n=2", "--set", "latency_ms=5",
                 "--json"]) == 0
    capsys.readouterr()
    assert any(isinstance(ev, RunEnd) for ev in load(path).events)


@pytest.mark.parametrize("value", ["0", "lots", "2000000"])
def test_a_bad_size_cap_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "io", "--record", "x.jsonl", "--record-max-mb", value]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--record-max-mb" in err[0]
    assert not Path("x.jsonl").exists()


def test_ctrl_c_during_a_recorded_run_still_finishes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "interrupted.jsonl.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpviz", "run", "io", "--set", "n=100", "--set",
         "latency_ms=10000", "--record", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        me = psutil.Process(proc.pid)
        writers: list[psutil.Process] = []

        def cmdline(child: psutil.Process) -> str:
            try:
                return " ".join(child.cmdline())
            except psutil.Error:  # a helper that came and went
                return ""

        def started() -> bool:
            writers[:] = [c for c in me.children() if "_writer_main" in cmdline(c)]
            return bool(writers) and path.stat().st_size > 0 and b"RunStart" in (
                zlib.decompressobj(wbits=31).decompress(path.read_bytes())
            )

        _wait_for(started, "the run to start and be recorded")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    _, alive = psutil.wait_procs(writers, timeout=5)
    assert alive == []
    ends = [ev for ev in load(path).events if isinstance(ev, RunEnd)]
    assert [ev.result.outcome for ev in ends] == ["stopped"]


# -- bad files: one line, the file, the line, the problem, exit 2 ---------------------------------


def _check(path: Path, capsys: pytest.CaptureFixture[str], *, command: str = "replay") -> str:
    argv = ["replay", str(path), "--check"] if command == "replay" else ["export", str(path),
                                                                          "-o", str(path) + ".out"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"cpviz: error: {path}")
    return lines[0]


def test_bad_file_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert "line 1: empty file" in _check(path, capsys)


def test_bad_file_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _check(tmp_path / "nowhere.jsonl", capsys)
    assert "cannot read: No such file or directory" in message


def test_bad_file_wrong_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "v2.jsonl", header_line(version=2))
    message = _check(path, capsys)
    assert "line 1: unsupported version 2; this cpviz reads version 1" in message


def test_bad_file_not_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "other.jsonl", '{"hello": "world"}')
    assert "line 1: not a cpviz recording" in _check(path, capsys)


def test_bad_file_garbage_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step = json.dumps({"type": "LoopLag", "t": 1.0, "lag_s": 0.0})
    path = write_lines(tmp_path / "garbage.jsonl", header_line(), step, "<<garbage>>", step)
    assert "line 3: not valid JSON" in _check(path, capsys)


def test_bad_file_truncated_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step = json.dumps({"type": "LoopLag", "t": 1.0, "lag_s": 0.0})
    path = write_lines(tmp_path / "cut.jsonl", header_line(), step, step[:20], end="")
    message = _check(path, capsys)
    assert "line 3: truncated: the last line ends in the middle of an event" in message


def test_a_whole_last_line_without_a_newline_is_fine(tmp_path: Path) -> None:
    step = json.dumps({"type": "LoopLag", "t": 1.0, "lag_s": 0.0})
    path = write_lines(tmp_path / "no-newline.jsonl", header_line(), step, end="")
    assert load(path).events == (LoopLag(1.0, 0.0),)


def test_bad_file_huge_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = '{"type": "LoopLag", "t": 1.0, "lag_s": 0.0, "pad": "' + "x" * MAX_LINE_BYTES + '"}'
    path = write_lines(tmp_path / "huge.jsonl", header_line(), huge)
    assert f"line 2: line is longer than {MAX_LINE_BYTES} bytes" in _check(path, capsys)


def test_a_huge_line_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "long.jsonl", header_line(), "[" + "1," * 5000 + "1]")
    with RecordingReader(path, max_line=len(header_line()) + 100) as reader:
        with pytest.raises(RecordingError, match="line 2: line is longer than"):
            list(reader)
        # It stopped just past the limit instead of reading the 10 kB line.
        assert reader._raw.tell() < len(header_line()) + 100 + 8192


def test_bad_file_truncated_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = (FIXTURES / "io.jsonl.gz").read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    message = _check(path, capsys)
    assert "truncated or corrupt gzip data" in message
    assert ": line " in message


def test_bad_file_corrupt_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = bytearray((FIXTURES / "io.jsonl.gz").read_bytes())
    for i in range(len(whole) // 2, len(whole) // 2 + 64):
        whole[i] ^= 0x5A
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(bytes(whole))
    # Flipped bits in a deflate stream either break it (gzip notices) or decode to garbage
    # that is no longer JSON (the line check notices first); which one depends on the bytes.
    message = _check(path, capsys)
    assert "truncated or corrupt gzip data" in message or "not valid JSON" in message
    assert f"{path}: line " in message


def test_bad_file_unknown_event_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "bogus.jsonl", header_line(), '{"type": "Bogus", "t": 1}')
    assert 'line 2: unknown event type "Bogus"' in _check(path, capsys)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"type": "TaskStep", "task_id": 1, "ready": 0.0, "start": "soon", "end": 1.0,
          "final": False}, 'TaskStep.start should be a number, got "soon"'),
        ({"type": "TaskStep", "task_id": 1.5, "ready": 0.0, "start": 0.0, "end": 1.0},
         "TaskStep.task_id should be an integer, got 1.5"),
        ({"type": "TaskStep", "task_id": 1, "ready": 0.0, "start": 0.0, "end": 1.0,
          "final": "no"}, 'TaskStep.final should be true or false, got "no"'),
        ({"type": "TaskStep", "task_id": 1, "ready": 0.0, "start": 0.0},
         "TaskStep is missing field 'end'"),
        ({"type": "LoopLag", "t": 1.0, "lag_s": 0.0, "colour": "red"},
         "LoopLag has unknown field 'colour'"),
        ({"type": "IncidentStart", "t": 1.0, "incident_id": 1, "since": 0.5,
          "culprit": {"file": "a.py", "line": "x", "function": "f", "code": ""},
          "blocking_call": None}, 'IncidentStart.culprit.line should be an integer, got "x"'),
        ({"type": "CoreSample", "t": 1.0, "percents": [1.0, "busy"]},
         'CoreSample.percents[1] should be a number, got "busy"'),
        ({"type": "CoreSample", "t": 1.0, "percents": [], "placements": [
            {"role": "wizard", "ident": 1, "core": 0, "cpu_pct": 1.0}]},
         'CoreSample.placements[0].role should be one of "loop"'),
        ([1, 2, 3], "expected an event object, got list"),
    ],
)
def test_bad_file_wrong_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], event: object, problem: str
) -> None:
    path = write_lines(tmp_path / "field.jsonl", header_line(), json.dumps(event))
    assert f"line 2: {problem}" in _check(path, capsys)


def test_bad_header_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "cores.jsonl", header_line(cores="two"))
    assert "line 1: header.cores should be an integer" in _check(path, capsys)


def test_bad_files_fail_the_same_way_for_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "v9.jsonl", header_line(version=9))
    assert "line 1: unsupported version 9" in _check(path, capsys, command="export")
    assert not Path(str(path) + ".out").exists()


def test_nothing_is_evaluated_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A pickle, as a crafted file might hold one: refused as not JSON, never unpickled.
    import pickle

    path = tmp_path / "pickle.jsonl"
    path.write_bytes(header_line().encode() + b"\n" + pickle.dumps(print) + b"\n")
    assert "line 2:" in _check(path, capsys)


def test_a_file_that_cannot_be_written_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "dir.jsonl"
    code = main(["run", "io", "--set", "n=1", "--record", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"cpviz: error: {target}: cannot write: No such file or directory"]


def test_gzip_is_read_by_its_content_not_its_name(tmp_path: Path) -> None:
    plain = tmp_path / "looks.gz"
    write_lines(plain, header_line(), json.dumps({"type": "LoopLag", "t": 1.0, "lag_s": 0.5}))
    assert load(plain).events == (LoopLag(1.0, 0.5),)
    packed = tmp_path / "packed.jsonl"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert load(packed).events == (LoopLag(1.0, 0.5),)
