"""Thread and process rows in a replay: a real run's recording brings them back, and a replay
draws them on the same axis as the task rows (a generated recording, so the picture is fixed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpviz.app import CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import Event, OsSamples
from cpviz.engine.osrows import WORKER_ROLES, Key, RowInfo, Slice, supported
from cpviz.engine.recording.index import scan
from cpviz.engine.recording.os_samples import Batcher
from cpviz.engine.replay import ReplayController, ReplaySource
from cpviz.engine.source import event_time
from tests.scripted import CORES, LOOP_TID, PROBE_TID, scene_events, settled, workload_infos


@pytest.mark.skipif(not supported(), reason="the OS does not show threads' CPU time here")
def test_a_recorded_run_replays_with_its_thread_rows(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl.gz"
    done = subprocess.run(
        [sys.executable, "-m", "cpviz", "run", "cpu", "--mode", "threads", "--set", "jobs=2",
         "--json", "--record", str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "completed"
    index = scan(path)
    assert index.os_samples > 0
    source = ReplaySource.open(path, index=index, wall=ManualClock(0.0), paused=True)
    source.seek(index.duration)
    while source.poll() or source.behind:
        pass
    store = source.os_rows
    assert store is not None
    ran = []
    for info in store.infos():
        cell = store.span(info.key, index.start, index.end + 1.0)
        if cell is not None and cell.running > 0:
            ran.append(info)
    assert len(ran) >= 2, [i.label for i in store.infos()]
    # Among them the run's two workers (a thread the observed side has not named yet has no
    # role, and counts as a worker, as it does live).
    assert sum(1 for i in ran if i.key[0] == "thread" and i.role in WORKER_ROLES) >= 2
    source.close()


# -- the picture ----------------------------------------------------------------------------------

#: When the generated samples begin and end (the scripted cpu:processes run is 0.5–2.5 s).
FROM, TO, STEP = 0.3, 2.6, 0.01
POOL, WORKER_A, WORKER_B, WORKER_C = ("thread", 4300), ("process", 5001), ("process", 5002), \
    ("process", 5003)
LOOP: Key = ("thread", LOOP_TID)
PROBE: Key = ("thread", PROBE_TID)
INFOS: dict[Key, RowInfo] = {
    LOOP: RowInfo(LOOP, "cpviz-lab", "loop"),
    PROBE: RowInfo(PROBE, "cpviz-watchdog", "probe"),
    POOL: RowInfo(POOL, "pool feeder", "thread"),
    WORKER_A: RowInfo(WORKER_A, "python 5001", "process"),
    WORKER_B: RowInfo(WORKER_B, "python 5002", "process"),
    WORKER_C: RowInfo(WORKER_C, "python 5003", "process"),
}


def sample(i: int) -> dict[Key, Slice]:
    """Sample ``i``: two worker processes side by side on both cores, a third waiting for one,
    the loop mostly asleep, a pool thread that wakes every tenth of a second."""
    t = FROM + i * STEP
    out = {LOOP: Slice(0.05, 0.0, 0.0, 0), PROBE: Slice(0.01, 0.0, 0.0, 1),
           POOL: Slice(1.0, 0.0, 0.0, i // 10 % 2) if i % 10 < 3 else Slice(0, 0, 0.8, -1)}
    if 0.6 <= t < 2.4:
        out[WORKER_A] = Slice(1.0, 0.0, 0.0, 0)
        out[WORKER_B] = Slice(0.75, 0.25, 0.0, 1)
        out[WORKER_C] = Slice(0.25, 0.75, 0.0, (i // 5) % 2)
    return out


def generated() -> list[Event]:
    """The scripted scene with thread and process rows, batched as the live sampler does."""
    rows: list[Event] = []
    batcher = Batcher(rows.append)
    for i in range(round((TO - FROM) / STEP)):
        a = round(FROM + i * STEP, 6)
        batcher.add(a, round(a + STEP, 6), sample(i), INFOS)
    batcher.flush()
    assert all(isinstance(ev, OsSamples) for ev in rows)
    # A replay hands events out in file order; a recording's are in time order.
    return sorted([*scene_events(), *rows], key=event_time)


def replay_at(position: float) -> CpvizApp:
    source = ReplaySource(generated(), CORES, start=0.0, wall=ManualClock(0.0), paused=True)
    source.seek(position)
    return CpvizApp(source, ReplayController(source, workload_infos(), "generated.jsonl"))



def test_a_replay_shows_the_rows_it_recorded() -> None:
    app = replay_at(2.4)
    assert app.os_rows.display and app.os_rows.store is not None


def test_a_replay_of_thread_and_process_rows(snap_compare) -> None:
    assert snap_compare(replay_at(2.45), terminal_size=(120, 48), run_before=settled)
