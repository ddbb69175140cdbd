"""Recordings nobody should have to trust: every value in range or one line and exit 2, a
replay that streams, and an export that never writes over a file by surprise."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from cpviz.cli import main
from cpviz.engine.events import Event, LoopLag, RunEnd, RunResult, RunStart, TaskSpawn, TaskStep
from cpviz.engine.model import Model
from cpviz.engine.recording import Header, encode_lines
from cpviz.engine.recording.index import scan
from cpviz.engine.recording.validate import MAX_CORES
from cpviz.engine.replay import ReplaySource
from tests.paths import FIXTURES


def header_line(**changes: object) -> str:
    obj = Header.now(2, 0.0, (), "cpviz test").encode()
    obj.update(changes)
    return json.dumps(obj)


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def step(task_id: int = 1, ready: object = 1.0, start: object = 1.1, end: object = 1.2) -> str:
    # json.dumps writes NaN and Infinity as Python's json module reads them back.
    return json.dumps({"type": "TaskStep", "task_id": task_id, "ready": ready, "start": start,
                       "end": end, "final": False})


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    _out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cpviz: error: ") and "Traceback" not in err
    return lines[0]


# -- the header -----------------------------------------------------------------------------------


def test_a_header_claiming_a_billion_cores_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It used to pass --check, then take screenshot to 3.4 GB and beyond.
    path = write(tmp_path / "cores.jsonl", header_line(cores=1_000_000_000))
    for argv in (["replay", str(path), "--check"], ["screenshot", str(path),
                                                    str(tmp_path / "s.svg")]):
        message = one_line_error(argv, capsys)
        assert f"{path}: line 1: header.cores is 1000000000; a recording is of 1 to " \
               f"{MAX_CORES} cores" in message
    assert not (tmp_path / "s.svg").exists()


@pytest.mark.parametrize("clock", ["NaN", "-Infinity", "-5", "1e300"])
def test_a_header_clock_reading_out_of_range_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: str
) -> None:
    path = tmp_path / "clock.jsonl"
    path.write_text(header_line().replace('"clock_start": 0.0', f'"clock_start": {clock}')
                    + "\n")
    assert "line 1: header.clock_start is" in one_line_error(
        ["replay", str(path), "--check"], capsys)


# -- times ----------------------------------------------------------------------------------------

BAD_TIMES = [
    (step(end=float("nan")), "line 2: TaskStep.end is NaN; a time must be a finite number"),
    (step(end=float("inf")), "line 2: TaskStep.end is inf; a time must be a finite number"),
    (step(ready=-1.0), "line 2: TaskStep.ready is -1.0; a time cannot be negative"),
    (step(end=1e300), "line 2: TaskStep.end is 1e+300, outside the span a recording can have"),
    (step(start=2.0, end=1.5), "line 2: TaskStep.end (1.5) is before its start (2.0)"),
    (step(ready=1.5, start=1.2), "line 2: TaskStep.start (1.2) is before its ready (1.5)"),
    (json.dumps({"type": "LoopLag", "t": float("nan"), "lag_s": 0.0}),
     "line 2: LoopLag.t is NaN"),
    (json.dumps({"type": "IncidentEnd", "t": 2.0, "incident_id": 1,
                 "duration_s": float("inf")}), "line 2: IncidentEnd.duration_s is inf"),
    (json.dumps({"type": "Phase", "t": 1.0, "run_id": 1, "name": "x", "start": 2.0}),
     "line 2: Phase.t (1.0) is before its start (2.0)"),
    (json.dumps({"type": "CoreSample", "t": 1.0, "percents": [10.0, 20.0, 30.0]}),
     "line 2: CoreSample.percents has 3 cores; the header says 2"),
    (json.dumps({"type": "CoreSample", "t": 1.0, "percents": [10.0, float("nan")]}),
     "line 2: CoreSample.percents[1] is NaN; a core is from 0 to 100% busy"),
    (json.dumps({"type": "TaskSpawn", "t": 1.0, "task_id": 2**70, "name": "x", "run_id": 1,
                 "parent_id": 0}), "line 2: TaskSpawn.task_id does not fit in 64 bits"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_TIMES, ids=[p for _, p in BAD_TIMES])
def test_nonsense_values_are_refused_by_check_export_and_screenshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    # NaN and infinity used to pass --check, then crash export and screenshot with tracebacks.
    path = write(tmp_path / "bad.jsonl", header_line(), line)
    out = tmp_path / "out.json"
    for argv in (["replay", str(path), "--check"], ["export", str(path), "-o", str(out)],
                 ["screenshot", str(path), str(tmp_path / "s.svg"), "--at", "0"]):
        message = one_line_error(argv, capsys)
        assert message.startswith(f"cpviz: error: {path}: ") and problem in message, message
    assert not out.exists() and not (tmp_path / "s.svg").exists()


def test_a_directory_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["replay", str(tmp_path), "--check"], ["export", str(tmp_path)],
                 ["screenshot", str(tmp_path), str(tmp_path / "s.svg")]):
        assert one_line_error(argv, capsys) == \
            f"cpviz: error: {tmp_path}: is a directory, not a recording"


# -- screenshot --at ------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["nan", "99999", "-1", "inf"])
def test_at_outside_the_recording_is_refused_naming_its_span(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str
) -> None:
    path = FIXTURES / "blocking.jsonl.gz"
    duration = scan(path).duration
    message = one_line_error(["screenshot", str(path), str(tmp_path / "s.svg"), "--at", at],
                             capsys)
    assert f"--at {at} is outside {path}: it spans 0 to {duration:.3f} s" in message
    assert not (tmp_path / "s.svg").exists()


# -- export never overwrites by surprise ----------------------------------------------------------


def test_export_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trace.json"
    out.write_text("precious")
    source = str(FIXTURES / "io.jsonl.gz")
    assert f"{out} exists already; add --force" in one_line_error(
        ["export", source, "-o", str(out)], capsys)
    assert out.read_text() == "precious"
    assert main(["export", source, "-o", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["traceEvents"]


def test_export_never_writes_over_the_recording_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.jsonl.gz"
    path.write_bytes((FIXTURES / "io.jsonl.gz").read_bytes())
    message = one_line_error(["export", str(path), "-o", str(path), "--force"], capsys)
    assert "is the recording being exported" in message
    assert path.read_bytes() == (FIXTURES / "io.jsonl.gz").read_bytes()


def test_a_streamed_export_is_the_in_memory_one(tmp_path: Path) -> None:
    from cpviz.engine.export import dumps, export_perfetto, to_trace
    from cpviz.engine.recording import load

    source = FIXTURES / "blocking.jsonl.gz"
    out = tmp_path / "t.json"
    count = export_perfetto(source, out)
    trace = to_trace(load(source))
    assert out.read_text(encoding="utf-8") == dumps(trace)
    assert count == len(trace["traceEvents"])


# -- a replay streams the file --------------------------------------------------------------------


def _many_tasks(path: Path, tasks: int) -> Path:
    header = Header.now(2, 0.0, (), "cpviz test")
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header.encode()) + "\n")
        batch: list[Event] = [RunStart(0.5, 1, "io", "concurrent", ())]
        for i in range(tasks):
            t = 1.0 + i * 1e-4
            batch += [TaskSpawn(t, i + 1, f"call {i}", 1, 0),
                      TaskStep(i + 1, t, t + 1e-5, t + 2e-5, True)]
            if len(batch) > 10_000:
                f.write(encode_lines(batch))
                batch = []
        end = 1.0 + tasks * 1e-4
        batch += [LoopLag(end, 0.001),
                  RunEnd(end, 1, RunResult("io", "concurrent", (), end - 0.5, 0.1, 0.2, None,
                                           None, ()))]
        f.write(encode_lines(batch))
    return path


def _replay_peak(path: Path) -> tuple[int, Model]:
    """Peak bytes Python allocated to check a recording and fold it to its end."""
    tracemalloc.start()
    try:
        index = scan(path)
        source = ReplaySource.open(path, index=index, paused=True)
        model = Model(source.cores)
        source.seek(index.duration)
        batches = [source.poll()]
        model.apply(batches[-1])
        while _behind(source):
            model.apply(source.poll())
        source.close()
        assert len(batches[0]) <= source.max_batch
        return tracemalloc.get_traced_memory()[1], model
    finally:
        tracemalloc.stop()


def test_a_replay_holds_the_models_window_not_the_file(tmp_path: Path) -> None:
    # Loading used to hold every event: 10^6 tasks took replay --check to 475 MB.
    # Both past the Model's task cap (MAX_TASKS, 10,000), so both keep as many.
    small, small_model = _replay_peak(_many_tasks(tmp_path / "small.jsonl", 12_000))
    large, large_model = _replay_peak(_many_tasks(tmp_path / "large.jsonl", 36_000))
    assert [r.steps for r in large_model.results] == [36_000]  # it all went through the Model
    assert len(large_model.tasks) == len(small_model.tasks)  # which keeps what it shows
    # Three times the file (48,000 more events, 5 MB or more if they were held), about the same
    # memory: what the Model keeps, and a batch in flight.
    assert large < small + 3_000_000, (small, large)


def _behind(source: ReplaySource) -> bool:
    """A call, so mypy does not carry a narrowing of the attribute across polls."""
    return source.behind


def test_a_backward_seek_reads_the_file_again_from_the_start(tmp_path: Path) -> None:
    path = _many_tasks(tmp_path / "rec.jsonl", 2_000)
    index = scan(path)
    source = ReplaySource.open(path, index=index, paused=True)
    source.max_batch = 500
    model = Model(source.cores)
    source.seek(index.duration)
    first = source.poll()
    assert len(first) == 500 and _behind(source)  # a long seek comes in bounded batches
    model.apply(first)
    while _behind(source):
        model.apply(source.poll())
    source.seek(index.duration / 2)
    assert source.take_reset()
    again = Model(source.cores)
    again.apply(source.poll())
    while _behind(source):
        again.apply(source.poll())
    assert 0 < sum(1 for _ in again.rows()) < sum(1 for _ in model.rows()) or \
        again.latest < model.latest
    assert again.latest <= source.at
    source.close()
