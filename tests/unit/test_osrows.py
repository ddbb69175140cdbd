"""Thread and process rows from fake /proc readings: running, runnable, waiting, gil?; the
store's columns; a run's figures. No real threads are timed here."""

from __future__ import annotations

import json
import os
import threading

import pytest

from cpviz.engine import osrows, procfs
from cpviz.engine.causes import LoopSampler
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import RunEnd, RunResult
from cpviz.engine.osrows import (
    Cell,
    Reading,
    RowInfo,
    Slice,
    Store,
    Totals,
    run_figures,
    simultaneous,
    slice_of,
)
from cpviz.engine.recording import decode_event, encode_event
from cpviz.widgets.os_rows import look, visible_rows

MS = 1_000_000


def _r(cpu_ms: float, delay_ms: float = 0.0, state: bytes = b"S", core: int = 0,
       futex: bool | None = None, turns: int = 0) -> Reading:
    return Reading(int(cpu_ms * MS), int(delay_ms * MS), state, core, futex, turns)


# -- one interval of one thread -----------------------------------------------------------------


def test_running_comes_from_cpu_time_not_the_state_letter() -> None:
    # Both "R" at the sample, but only one of them had the CPU in the interval.
    ran = slice_of(_r(0), _r(10, state=b"R", core=1), 10 * MS, sibling_ran=True)
    starved = slice_of(_r(0), _r(0, state=b"R"), 10 * MS, sibling_ran=True)
    assert (ran.run, ran.delay, ran.core) == (1.0, 0.0, 1)
    assert (starved.run, starved.delay, starved.core) == (0.0, 1.0, -1)


def test_run_delay_is_runnable_and_the_rest_waits() -> None:
    s = slice_of(_r(0, 0), _r(3, 2, state=b"S"), 10 * MS, sibling_ran=False)
    assert s.run == pytest.approx(0.3) and s.delay == pytest.approx(0.2) and s.gil == 0.0
    assert Cell(1.0, s.run, s.delay, s.gil, 0).waiting == pytest.approx(0.5)


def test_a_futex_wait_while_a_sibling_ran_is_gil() -> None:
    s = slice_of(_r(0), _r(1, futex=True, turns=2), 10 * MS, sibling_ran=True)
    assert s.gil == pytest.approx(0.9)


def test_a_futex_sleeper_never_woken_waits_for_something_else() -> None:
    # A GIL waiter wakes every switch interval to ask for it; a queue or a join does not.
    s = slice_of(_r(0, turns=5), _r(0, futex=True, turns=5), 10 * MS, sibling_ran=True)
    assert s.gil == 0.0


@pytest.mark.parametrize(("futex", "sibling", "has_gil"), [
    (True, False, True),   # nobody else ran: a lock, a join, a condition
    (False, True, True),   # asleep in select or nanosleep
    (None, True, True),    # the platform does not say where it sleeps
    (True, True, False),   # a free-threaded interpreter has no GIL to wait for
])
def test_other_waits_are_not_gil(futex: bool | None, sibling: bool, has_gil: bool) -> None:
    s = slice_of(_r(0), _r(0, futex=futex, turns=1), 10 * MS, sibling_ran=sibling,
                 has_gil=has_gil)
    assert s.gil == 0.0 and s.run == 0.0 and s.delay == 0.0


def test_deltas_beyond_the_interval_are_clamped() -> None:
    s = slice_of(_r(0, 0), _r(14, 9, state=b"R"), 10 * MS, sibling_ran=False)
    assert s.run == 1.0 and s.delay == 0.0


# -- simultaneous -------------------------------------------------------------------------------


def test_simultaneous_needs_more_than_a_core_plus_the_tick_slack() -> None:
    window = 50 * MS
    taking_turns = {("thread", 1): 26 * MS, ("thread", 2): 27 * MS}  # 53 ms: a tick's slack
    side_by_side = {("thread", 1): 50 * MS, ("thread", 2): 45 * MS}
    one_busy = {("thread", 1): 80 * MS}  # counted at most whole
    assert not simultaneous(taking_turns, window)
    assert simultaneous(side_by_side, window)
    assert not simultaneous(one_busy, window)


# -- the store ----------------------------------------------------------------------------------


def _info(key: osrows.Key) -> dict[osrows.Key, RowInfo]:
    return {key: RowInfo(key, "w", "thread")}


def test_columns_average_samples_and_name_the_core_it_ran_on_longest() -> None:
    store = Store(capacity=64)
    key = ("thread", 7)
    samples = [Slice(1.0, 0.0, 0.0, 0), Slice(1.0, 0.0, 0.0, 1), Slice(1.0, 0.0, 0.0, 1),
               Slice(0.0, 1.0, 0.0, -1)]
    for i, s in enumerate(samples):
        store.append(i * 0.01, (i + 1) * 0.01, {key: s}, _info(key))
    two = store.columns(key, 0.0, 0.02, 2)
    assert two[0] is not None and two[1] is not None
    assert two[0].running == pytest.approx(1.0) and two[0].covered == pytest.approx(1.0)
    assert two[1].running == pytest.approx(0.5) and two[1].runnable == pytest.approx(0.5)
    whole = store.span(key, 0.0, 0.04)
    assert whole is not None and whole.core == 1
    assert store.columns(key, 0.04, 0.01, 2) == [None, None]
    assert store.columns(("thread", 8), 0.0, 0.01, 1) == [None]


def test_a_long_idle_sample_spreads_over_the_columns_it_spans() -> None:
    store = Store(capacity=16)
    key = ("process", 3)
    store.append(0.0, 0.1, {key: Slice(0.5, 0.0, 0.0, 0)}, _info(key))
    cells = store.columns(key, 0.0, 0.01, 10)
    assert all(c is not None and c.running == pytest.approx(0.5) for c in cells)


def test_memory_is_bounded_and_old_rows_go() -> None:
    store = Store(capacity=8)
    gone, live = ("thread", 1), ("thread", 2)
    store.append(0.0, 0.01, {gone: Slice(1, 0, 0, 0), live: Slice(1, 0, 0, 0)},
                 {**_info(gone), **_info(live)})
    for i in range(1, 20):
        store.append(i * 0.01, (i + 1) * 0.01, {live: Slice(0, 0, 0, -1)}, _info(live))
    assert set(store.rows) == {live}
    assert len(store.rows[live].run) == 8
    # Only the last 8 samples are kept: the first columns are now empty.
    cells = store.columns(live, 0.0, 0.01, 20)
    assert cells[:12] == [None] * 12 and all(c is not None for c in cells[12:])


# -- a run's figures ----------------------------------------------------------------------------


def test_run_figures_subtract_the_start_and_leave_out_cpviz_threads() -> None:
    a = Totals(1.0, 100 * MS, 10 * MS, {
        ("thread", 1): ("cpviz worker 0", "thread", 5 * MS, 1 * MS, 20 * MS),
        ("thread", 9): ("watchdog", "probe", 1 * MS, 0, 20 * MS),
    })
    b = Totals(2.0, 1100 * MS, 810 * MS, {
        ("thread", 1): ("cpviz worker 0", "thread", 505 * MS, 101 * MS, 1020 * MS),
        ("thread", 9): ("watchdog", "probe", 50 * MS, 30 * MS, 1020 * MS),
        ("process", 5): ("python 5", "process", 300 * MS, 200 * MS, 900 * MS),
        ("thread", 2): ("idle", "thread", 0, 0, 1000 * MS),
    })
    figures = run_figures(a, b)
    assert figures["simultaneous"] == pytest.approx(0.8)
    assert figures["cpu_wait_s"] == pytest.approx(0.3)
    by_name = {w["name"]: w for w in figures["per_worker"]}
    assert set(by_name) == {"cpviz worker 0", "python 5"}
    assert by_name["cpviz worker 0"] == {"name": "cpviz worker 0", "kind": "thread", "id": 1,
                                         "running_s": 0.5, "runnable_s": 0.1, "waiting_s": 0.4}
    assert by_name["python 5"]["waiting_s"] == pytest.approx(0.4)
    assert run_figures(a, a)["simultaneous"] is None


# -- reading /proc ------------------------------------------------------------------------------


@pytest.mark.skipif(not osrows.supported(), reason="no per-thread schedstat here")
def test_task_files_read_this_thread_again_and_again() -> None:
    files = procfs.TaskFiles(os.getpid(), threading.get_native_id())
    try:
        first = second = files.sched()
        # A running thread's time is booked at the scheduler's ticks: spin until one passes.
        for _ in range(10_000):
            sum(range(1000))
            second = files.sched()
            if second is not None and first is not None and second[0] > first[0]:
                break
        state = files.state()
        assert first is not None and second is not None and second[0] > first[0]
        assert state is not None and state[0] == b"R" and state[1] >= 0
    finally:
        files.close()
    assert files.sched() is None


@pytest.mark.skipif(not osrows.supported(), reason="no per-thread schedstat here")
def test_the_sampler_finds_a_waiting_thread_of_a_process() -> None:
    release = threading.Event()
    waiter = threading.Thread(target=release.wait, name="waiter", daemon=True)
    waiter.start()
    clock = ManualClock()
    tid = waiter.native_id
    assert tid is not None
    for _ in range(1000):  # until it sleeps in its wait
        if (procfs.stat_fields(f"/proc/self/task/{tid}/stat") or [b""])[0] == b"S":
            break
        release.wait(0.001)
    rows = osrows.OsRows(clock, lambda: (os.getpid(), {tid: ("waiter", "thread")}))
    try:
        rows.sample()
        clock.advance(0.05)
        start = rows.mark()
        clock.advance(0.05)
        end = rows.mark()
    finally:
        release.set()
        waiter.join()
        rows.stop()
    cell = rows.store.span(("thread", tid), 0.0, 0.1)
    assert cell is not None and cell.running < 0.5 and cell.waiting > 0.5
    assert end.rows[("thread", tid)][0] == "waiter"
    assert end.sampled_ns > start.sampled_ns


def test_a_runs_os_figures_survive_a_recording() -> None:
    figures = run_figures(
        Totals(0.0, 0, 0, {}),
        Totals(1.0, 1000 * MS, 500 * MS,
               {("thread", 1): ("cpviz worker 0", "thread", 600 * MS, 100 * MS, 1000 * MS)}),
    )
    end = RunEnd(2.0, 1, RunResult("cpu", "threads", (("kind", "python"),), 1.0, 0.6, 0.6,
                                   None, None, (), extra=tuple(figures.items())))
    back = decode_event(json.loads(json.dumps(encode_event(end))))
    assert back == end
    printed = back.result.as_dict()
    assert printed["simultaneous"] == 0.5 and printed["cpu_wait_s"] == 0.1
    assert printed["per_worker"][0]["running_s"] == 0.6


def test_rows_draw_turns_apart_from_side_by_side() -> None:
    store = Store(capacity=64)
    a, b, c, d = (("thread", i) for i in range(1, 5))
    infos = {k: RowInfo(k, f"w{k[1]}", "thread") for k in (a, b, c, d)}
    for i in range(8):
        turn = i % 2 == 0
        store.append(i * 0.01, (i + 1) * 0.01, {
            # Taking turns: one runs while the other waits for the GIL.
            a: Slice(1.0, 0.0, 0.0, 0) if turn else Slice(0.0, 0.0, 1.0, -1),
            b: Slice(0.0, 0.0, 1.0, -1) if turn else Slice(1.0, 0.0, 0.0, 1),
            # Side by side, on two cores.
            c: Slice(1.0, 0.0, 0.0, 0), d: Slice(1.0, 0.0, 0.0, 1),
        }, infos)

    def row(key: osrows.Key) -> str:
        return "".join(look(cell)[0] for cell in store.columns(key, 0.0, 0.01, 8))

    assert (row(a), row(b)) == ("█░█░█░█░", "░█░█░█░█")
    assert row(c) == row(d) == "█" * 8
    assert look(store.span(d, 0.0, 0.08))[1] == "core1"
    own = RowInfo(("thread", 9), "watchdog", "probe")
    loop = RowInfo(("thread", 8), "loop", "loop")
    assert [r.label for r in visible_rows([infos[a], own, loop])] == ["loop", "w1"]


def test_the_loop_sampler_takes_its_readings_from_the_rows_sampler() -> None:
    loop = LoopSampler(ManualClock())
    loop.watch(pid=10, loop_tid=11, probes=[13])
    first = {11: _r(0), 12: _r(0), 13: _r(0)}
    then = {11: _r(1, futex=True, turns=2), 12: _r(9), 13: _r(5)}
    loop.feed(1.00, 10, first)
    loop.feed(1.01, 10, then)
    loop.feed(1.02, 99, then)  # another process: not the loop's
    (tick,) = loop.ticks
    assert tick.run == pytest.approx(0.001) and tick.futex == pytest.approx(0.009)
    assert tick.others == {12: pytest.approx(0.009)}  # the probe left out
