"""Perfetto export: every trace event has the fields the Trace Event Format documents for it."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from cpviz.cli import main
from cpviz.engine.events import IncidentStart, RunEnd, TaskSpawn, TaskStep
from cpviz.engine.export import (
    CORES_PID,
    LOOP_PID,
    RUNS_PID,
    WATCHDOG_PID,
    dumps,
    to_trace,
)
from cpviz.engine.recording import Header, Recording, load
from cpviz.record_cli import default_output
from tests.functional.test_recording import every_event
from tests.paths import FIXTURES

#: The fixture whose export is kept beside it, and that export.
SOURCE = FIXTURES / "blocking.jsonl.gz"
KEPT = FIXTURES / "blocking.perfetto.json"

METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def validate(text: str) -> dict[str, Any]:
    """Check a trace against the Trace Event Format; returns the parsed document.

    JSON object form: ``traceEvents`` (a list) and ``displayTimeUnit`` ("ms" or "ns"). Every
    event has ``ph``, ``name``, ``pid`` (and ``tid``, except counters); all but metadata have a
    numeric ``ts`` in microseconds. Complete events (``X``) have a ``dur`` of zero or more and a
    ``cat``; instants (``i``) a scope ``s`` of g, p or t; counters (``C``) numeric ``args``;
    metadata (``M``) one of the documented names, with ``args.name`` or ``args.sort_index``.
    ``args``, where present, is an object. Complete events on one track must nest, never
    overlap partly, or viewers draw them wrongly.
    """
    doc = json.loads(text, parse_constant=_reject_constant)  # strict: no NaN or Infinity
    assert isinstance(doc, dict)
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    assert doc["displayTimeUnit"] in ("ms", "ns")
    slices: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for ev in doc["traceEvents"]:
        assert isinstance(ev, dict), ev
        ph = ev["ph"]
        assert ph in ("X", "i", "C", "M"), ev
        assert isinstance(ev["name"], str) and ev["name"], ev
        assert isinstance(ev["pid"], int), ev
        if ph != "C" or "tid" in ev:
            assert isinstance(ev["tid"], int), ev
        if "args" in ev:
            assert isinstance(ev["args"], dict), ev
        if ph != "M":
            assert _number(ev["ts"]), ev
        if ph == "X":
            assert _number(ev["dur"]) and ev["dur"] >= 0, ev
            assert isinstance(ev["cat"], str), ev
            slices[(ev["pid"], ev["tid"])].append((ev["ts"], ev["ts"] + ev["dur"]))
        elif ph == "i":
            assert ev["s"] in ("g", "p", "t"), ev
        elif ph == "C":
            assert ev["args"] and all(_number(v) for v in ev["args"].values()), ev
        elif ph == "M":
            assert ev["name"] in METADATA, ev
            if ev["name"].endswith("_name"):
                assert isinstance(ev["args"]["name"], str), ev
            else:
                assert isinstance(ev["args"]["sort_index"], int), ev
    for track, spans in slices.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        open_ends: list[float] = []
        for start, end in spans:
            while open_ends and open_ends[-1] <= start + 1e-3:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1] + 1e-3, (track, start, end)
            open_ends.append(end)
    return doc


def events_of(doc: dict[str, Any], ph: str, pid: int | None = None) -> list[dict[str, Any]]:
    return [
        ev for ev in doc["traceEvents"] if ev["ph"] == ph and (pid is None or ev["pid"] == pid)
    ]


def test_the_validator_rejects_what_the_format_does_not_allow() -> None:
    good = {"ph": "X", "name": "a", "cat": "c", "ts": 1.0, "dur": 2.0, "pid": 1, "tid": 1}
    validate(json.dumps({"traceEvents": [good], "displayTimeUnit": "ms"}))
    bad_cases: list[dict[str, Any]] = [
        {**good, "dur": -1},
        {**good, "ts": "1"},
        {k: v for k, v in good.items() if k != "tid"},
        {**good, "ph": "B"},
        {"ph": "i", "name": "x", "ts": 1, "pid": 1, "tid": 1, "s": "q"},
        {"ph": "C", "name": "x", "ts": 1, "pid": 1, "args": {"v": "high"}},
        {"ph": "M", "name": "colour", "pid": 1, "tid": 0, "args": {"name": "x"}},
    ]
    for bad in bad_cases:
        with pytest.raises((AssertionError, KeyError)):
            validate(json.dumps({"traceEvents": [bad], "displayTimeUnit": "ms"}))
    overlapping = [good, {**good, "ts": 2.0, "dur": 5.0}]
    with pytest.raises(AssertionError):
        validate(json.dumps({"traceEvents": overlapping, "displayTimeUnit": "ms"}))
    with pytest.raises(ValueError, match="NaN"):
        validate('{"traceEvents": [{"ts": NaN}], "displayTimeUnit": "ms"}')


@pytest.mark.parametrize("name", ["io.jsonl.gz", "blocking.jsonl.gz", "cpu.jsonl.gz"])
def test_every_fixture_exports_to_a_valid_trace(name: str) -> None:
    recording = load(FIXTURES / name)
    doc = validate(dumps(to_trace(recording)))
    steps = sum(isinstance(ev, TaskStep) for ev in recording.events)
    assert len(events_of(doc, "X", LOOP_PID)) >= steps  # every step is a slice
    assert doc["otherData"]["cores"] == recording.header.cores


def test_each_task_is_a_track_named_by_the_task_with_its_steps() -> None:
    recording = load(FIXTURES / "io.jsonl.gz")
    doc = validate(dumps(to_trace(recording)))
    names = {
        ev["tid"]: ev["args"]["name"]
        for ev in events_of(doc, "M", LOOP_PID)
        if ev["name"] == "thread_name"
    }
    spawned = {ev.name for ev in recording.events if isinstance(ev, TaskSpawn)}
    assert spawned <= set(names.values())
    call_tracks = {tid for tid, name in names.items() if name.startswith("call")}
    assert len(call_tracks) == 50
    for tid in call_tracks:
        slices = [ev for ev in events_of(doc, "X", LOOP_PID)
                  if ev["tid"] == tid and ev["cat"] == "step"]
        assert len(slices) >= 2  # the call's first step and its wake-up
        assert all(ev["name"] == names[tid] for ev in slices)


def test_incidents_are_instants_carrying_their_culprit_and_freezes_are_slices() -> None:
    recording = load(SOURCE)
    doc = validate(dumps(to_trace(recording)))
    starts = [ev for ev in recording.events if isinstance(ev, IncidentStart)]
    instants = [ev for ev in events_of(doc, "i", WATCHDOG_PID) if ev["cat"] == "incident"]
    assert len(instants) == len(starts) > 0
    for inst, start in zip(instants, starts, strict=True):
        assert inst["s"] == "g"
        assert inst["ts"] == round(start.t * 1e6, 3)
        culprit = start.culprit
        assert culprit is not None
        assert inst["args"]["culprit"] == f"{culprit.file}:{culprit.line}"
        assert inst["args"]["function"] == culprit.function
        assert inst["args"]["code"] == culprit.code
        assert inst["args"]["blocking_call"] == start.blocking_call
    freezes = [ev for ev in events_of(doc, "X", WATCHDOG_PID) if ev["cat"] == "incident"]
    assert len(freezes) == len(starts)


def test_runs_are_spans_with_their_measured_result() -> None:
    recording = load(SOURCE)
    doc = validate(dumps(to_trace(recording)))
    (end,) = [ev for ev in recording.events if isinstance(ev, RunEnd)]
    (span,) = [ev for ev in events_of(doc, "X", RUNS_PID) if ev["cat"] == "run"]
    assert span["name"] == "blocking:sync-sleep"
    assert span["args"]["wall_s"] == round(end.result.wall_s, 6)
    assert span["args"]["outcome"] == "completed"
    assert span["args"]["steps"] > 0 and span["args"]["tasks"] > 0  # counted as the Model does
    assert span["dur"] == pytest.approx(end.result.wall_s * 1e6, abs=1.0)


def test_core_utilization_is_a_counter_track_per_core() -> None:
    recording = load(FIXTURES / "cpu.jsonl.gz")
    doc = validate(dumps(to_trace(recording)))
    names = {ev["name"] for ev in events_of(doc, "C", CORES_PID)}
    assert {f"core {c} busy %" for c in range(recording.header.cores)} <= names
    phases = [ev for ev in events_of(doc, "X", RUNS_PID) if ev["cat"] == "phase"]
    assert [p["name"] for p in phases] == ["startup"]


def test_every_event_type_exports_including_what_the_recording_cut_short() -> None:
    header = Header.now(2, 0.0, (), "test")
    recording = Recording("every.jsonl", header, tuple(every_event()))
    doc = validate(dumps(to_trace(recording)))
    cats = {ev.get("cat") for ev in doc["traceEvents"]}
    assert {"step", "ready", "run", "phase", "incident", "stall", "sweep", "gap"} <= cats
    unfinished = [ev for ev in events_of(doc, "X", RUNS_PID)
                  if ev["args"].get("outcome") == "unfinished when the recording ended"]
    assert [ev["name"] for ev in unfinished] == ["cpu:loop"]
    still = [ev for ev in events_of(doc, "X", WATCHDOG_PID)
             if ev["args"].get("note") == "still frozen when the recording ended"]
    assert len(still) == 1


def test_the_kept_export_is_what_exporting_the_fixture_gives_today() -> None:
    assert dumps(to_trace(load(SOURCE))) == KEPT.read_text(encoding="utf-8")
    validate(KEPT.read_text(encoding="utf-8"))


def test_export_command_writes_the_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    out = tmp_path / "trace.json"
    assert main(["export", str(SOURCE), "--format", "perfetto", "-o", str(out)]) == 0
    assert f"to {out}" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8") == KEPT.read_text(encoding="utf-8")


def test_export_to_a_place_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "trace.json"
    assert main(["export", str(SOURCE), "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"cpviz: error: cannot write {out}: No such file or directory"
    ]


def test_export_rejects_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(SOURCE), "--format", "svg"]) == 2
    assert "invalid choice: 'svg'" in capsys.readouterr().err


def test_the_default_output_sits_beside_the_recording() -> None:
    assert default_output("runs/io.jsonl.gz") == "runs/io.perfetto.json"
    assert default_output("io.jsonl") == "io.perfetto.json"
