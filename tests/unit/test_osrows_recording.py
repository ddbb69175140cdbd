"""Thread and process rows in recordings: the sampler's batches encode, decode, validate, replay
into the rows view's store, and export, all without a terminal or the machine's threads."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from cpviz.engine.clock import ManualClock
from cpviz.engine.events import Event, OsRowName, OsSamples, RunStart
from cpviz.engine.export import OS_PROCESSES_PID, OS_THREADS_PID, export_perfetto
from cpviz.engine.osrows import Key, RowInfo, Slice, Store
from cpviz.engine.recording import (
    Header,
    RecordingError,
    RecordingReader,
    decode_event,
    encode_event,
    encode_lines,
)
from cpviz.engine.recording.index import scan
from cpviz.engine.recording.os_samples import (
    LEVELS,
    Batcher,
    Replayed,
    decode_cells,
    sample_times,
    token,
)
from cpviz.engine.replay import ReplaySource

WORKER: Key = ("thread", 101)
LOOP: Key = ("thread", 100)
CHILD: Key = ("process", 300)
INFOS = {
    LOOP: RowInfo(LOOP, "cpviz-lab", "loop"),
    WORKER: RowInfo(WORKER, "worker 0", "thread"),
    CHILD: RowInfo(CHILD, "python 300", "process", "futex waits not shown"),
}


def slices_at(i: int) -> dict[Key, Slice]:
    """Sample ``i`` of a small made-up scene: a worker alternating between cores and a CPU
    wait, a loop that sleeps in a futex, and a child process that comes at sample 5."""
    out = {
        LOOP: Slice(0.0, 0.0, 0.6, -1),
        WORKER: Slice(1.0, 0.0, 0.0, i % 2) if i % 3 else Slice(0.25, 0.75, 0.0, 70),
    }
    if i >= 5:
        out[CHILD] = Slice(0.5, 0.25, 0.0, 1)
    return out


def batched(n: int = 30, step: float = 0.01, t0: float = 1.0) -> tuple[list[OsSamples], Store]:
    """The scene's samples through a Batcher, and the store the live view would have read."""
    events: list[Event] = []
    batcher = Batcher(events.append)
    live = Store()
    for i in range(n):
        a, b = t0 + i * step, t0 + (i + 1) * step
        live.append(a, b, slices_at(i), INFOS)
        batcher.add(a, b, slices_at(i), INFOS)
    batcher.flush()
    assert all(isinstance(ev, OsSamples) for ev in events)
    return [ev for ev in events if isinstance(ev, OsSamples)], live


# -- tokens and batches -----------------------------------------------------------------------


def test_a_token_decodes_to_its_shares_within_one_level() -> None:
    for s in (Slice(1.0, 0.0, 0.0, 3), Slice(0.3, 0.5, 0.2, 61), Slice(0.0, 0.0, 1.0, -1),
              Slice(0.5, 0.1, 0.0, 62), Slice(0.9, 0.0, 0.0, 4095), Slice(0.4, 0.0, 0.0, -1)):
        (cell,) = decode_cells(token(s), 1)
        assert cell is not None
        run, delay, gil, core = cell
        assert abs(run - s.run) <= 1 / LEVELS and abs(delay - s.delay) <= 1 / LEVELS
        assert abs(gil - s.gil) <= 1 / LEVELS
        assert core == (s.core if s.run > 0 else -1)


def test_repeats_and_absences_take_one_character() -> None:
    cells = decode_cells("~000..~Z001.", 7)
    assert cells[0] is None and cells[4] is None
    assert cells[1] == cells[2] == cells[3] == (0.0, 0.0, 0.0, -1)
    assert cells[5] == cells[6] == (1.0, 0.0, 0.0, 1)


@pytest.mark.parametrize("cells, n", [
    ("000", 2), ("000000", 1), (".000", 2), ("00", 1), ("0#0", 1), ("100", 1),
    ("100(4096)", 1), ("100(12", 1), ("100(x)", 1), ("100(٣)", 1),
])
def test_a_row_string_that_does_not_fit_is_refused(cells: str, n: int) -> None:
    with pytest.raises(ValueError):
        decode_cells(cells, n)


def test_batches_cover_the_samples_without_gaps_and_name_each_row_once() -> None:
    events, _ = batched(30)
    assert len(events) == 3 and all(len(ev.steps_us) == 10 for ev in events)
    spans = [span for ev in events for span in sample_times(ev)]
    assert spans[0][0] == pytest.approx(1.0) and spans[-1][1] == pytest.approx(1.3)
    for (_a0, b0), (a1, _b1) in itertools.pairwise(spans):
        assert a1 == pytest.approx(b0, abs=1e-6)
    named = [(n.kind, n.ident) for ev in events for n in ev.names]
    assert sorted(named) == sorted(INFOS)  # each once, the child when it came
    # A sleeping loop is one character a sample.
    loop = dict(events[0].threads)[100]
    assert loop == "00B" + "." * 9


def test_a_gap_in_the_samples_starts_a_new_batch() -> None:
    events: list[Event] = []
    batcher = Batcher(events.append)
    batcher.add(1.0, 1.01, slices_at(1), INFOS)
    batcher.add(1.5, 1.51, slices_at(2), INFOS)
    batcher.flush()
    assert [len(ev.steps_us) for ev in events if isinstance(ev, OsSamples)] == [1, 1]


def test_the_event_round_trips_through_the_codec() -> None:
    events, _ = batched(12)
    for ev in events:
        obj = json.loads(encode_lines([ev]))
        assert obj == json.loads(json.dumps(encode_event(ev)))
        assert decode_event(obj) == ev


def test_a_replayed_store_draws_the_columns_the_live_one_drew() -> None:
    events, live = batched(30)
    replayed = Replayed()
    for ev in events:
        replayed.apply(ev)
    store = replayed.store
    assert {i.key: (i.label, i.role, i.note) for i in store.infos()} == {
        k: (i.label, i.role, i.note) for k, i in INFOS.items()}
    for key in INFOS:
        got = store.columns(key, 1.0, 0.05, 6)
        want = live.columns(key, 1.0, 0.05, 6)
        for g, w in zip(got, want, strict=True):
            assert (g is None) == (w is None)
            if g is None or w is None:
                continue
            assert g.core == w.core
            for name in ("covered", "running", "runnable", "gil"):
                assert getattr(g, name) == pytest.approx(getattr(w, name), abs=1.5 / LEVELS)


# -- files: the validator, the replay and the export ------------------------------------------


def write(path: Path, events: list[Event], *, raw: tuple[str, ...] = ()) -> Path:
    header = Header.now(2, 0.5, (), "cpviz test").encode()
    text = json.dumps(header) + "\n" + encode_lines(events) + "".join(line + "\n" for line in raw)
    path.write_text(text, encoding="utf-8")
    return path


def bad_line(**changes: object) -> str:
    obj = encode_event(OsSamples(2.0, (10000, 10000), ((7, "Z001."),), ((8, "000~"),)))
    obj.update(changes)
    return json.dumps(obj)


@pytest.mark.parametrize("changes, says", [
    ({"t": math.nan}, "finite"),
    ({"t": -1.0}, "negative"),
    ({"t": 1e12}, "outside the span"),
    ({"steps_us": [10000, -5]}, "steps_us[1]"),
    ({"steps_us": []}, "from 1 to"),
    ({"steps_us": [1] * 1001}, "from 1 to"),
    ({"steps_us": [int(3e6), int(3e6)]}, "first sample's start"),
    ({"threads": [[7, "Z00"]]}, "threads[0][1]"),
    ({"threads": [[7, "Z00(5000)."]]}, "threads[0][1]"),
    ({"processes": [[2**70, "000."]]}, "64 bits"),
    ({"threads": [[i, "000."] for i in range(1001)]}, "rows"),
    ({"names": [{"kind": "fiber", "ident": 1, "label": "x", "role": ""}]}, "kind"),
])
def test_the_reader_refuses_a_hostile_batch(tmp_path: Path, changes: dict[str, object],
                                            says: str) -> None:
    path = write(tmp_path / "bad.jsonl", [], raw=(bad_line(**changes),))
    with pytest.raises(RecordingError, match="line 2") as info, RecordingReader(path) as reader:
        list(reader)
    assert says in str(info.value)


def test_a_replay_fills_the_store_up_to_its_position_and_again_after_going_back(
        tmp_path: Path) -> None:
    events, _ = batched(30)
    path = write(tmp_path / "rows.jsonl", [RunStart(0.9, 1, "cpu", "threads", ()), *events])
    index = scan(path)
    assert index.os_samples == 3
    source = ReplaySource.open(path, index=index, wall=ManualClock(0.0), paused=True)
    store = source.os_rows
    assert store is not None
    source.seek(1.15 - index.start)
    source.poll()
    assert store.n == 10 and store.latest() == pytest.approx(1.1)
    source.seek(index.duration)
    source.poll()
    assert store.n == 30 and len(store.infos()) == 3
    source.seek(0.0)  # backwards: read again from the start
    assert source.take_reset() and store.n == 0
    source.seek(index.duration)
    source.poll()
    assert store.n == 30
    source.close()


def test_a_recording_without_rows_has_no_store() -> None:
    source = ReplaySource([RunStart(1.0, 1, "cpu", "threads", ())], 2)
    assert source.os_rows is None and not source.has_os_rows


def test_the_export_has_a_track_per_row_with_its_running_stretches(tmp_path: Path) -> None:
    events, _ = batched(30)
    extra = OsSamples(1.31, (10000,), ((101, "Z00(70)"),), (),
                      (OsRowName("thread", 101, "renamed", "thread"),))
    path = write(tmp_path / "rows.jsonl", [*events, extra])
    out = tmp_path / "rows.perfetto.json"
    export_perfetto(path, out)
    trace = json.loads(out.read_text(encoding="utf-8"))["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace
             if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] >= OS_THREADS_PID}
    assert names[(OS_THREADS_PID, 101)] == "renamed (101)"
    assert names[(OS_PROCESSES_PID, 300)] == "python 300"
    worker = [e for e in trace if e["ph"] == "X" and e["pid"] == OS_THREADS_PID
              and e["tid"] == 101]
    assert {e["name"] for e in worker} == {"running on core 0", "running on core 1",
                                           "waiting for a CPU", "running on core 70"}
    # Slices on one track never overlap, and the loop's futex sleep is one long "gil?".
    ends = sorted((e["ts"], e["ts"] + e["dur"]) for e in worker)
    assert all(b[0] >= a[1] - 1e-3 for a, b in itertools.pairwise(ends))
    loop = [e for e in trace if e["ph"] == "X" and e["pid"] == OS_THREADS_PID
            and e["tid"] == 100]
    assert [e["name"] for e in loop] == ["gil?"]
    assert loop[0]["dur"] == pytest.approx(300_000, abs=1)
    child = [e for e in trace if e["ph"] == "X" and e["pid"] == OS_PROCESSES_PID]
    assert [e["name"] for e in child] == ["running on core 1"]
    assert child[0]["args"]["running_s"] == pytest.approx(0.125, abs=25 * 0.01 / LEVELS)
