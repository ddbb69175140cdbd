"""The watchdog reports a blocking call while it is still blocking, naming the line."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from pathlib import Path

from cpviz.agent.watchdog import Watchdog, classify
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import Event, IncidentEnd, IncidentStart, LoopLag

HERE = Path(__file__).resolve()


def _line_of(marker: str) -> int:
    for number, text in enumerate(HERE.read_text().splitlines(), 1):
        if marker in text and "_line_of" not in text:
            return number
    raise AssertionError(f"marker {marker!r} not found")


def test_reports_a_300ms_sleep_while_it_is_still_blocking() -> None:
    clock = MonotonicClock()
    events: list[tuple[Event, bool]] = []
    sleeping = threading.Event()

    def emit(ev: Event) -> None:
        events.append((ev, sleeping.is_set()))

    watchdog = Watchdog(emit, clock, threshold_s=0.1)

    async def culprit() -> None:
        sleeping.set()
        time.sleep(0.3)  # BLOCKING-LINE
        sleeping.clear()

    async def main() -> None:
        watchdog.attach(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        await culprit()
        await asyncio.sleep(0.05)
        watchdog.detach()

    asyncio.run(main())
    starts = [(e, frozen) for e, frozen in events if isinstance(e, IncidentStart)]
    ends = [e for e, _ in events if isinstance(e, IncidentEnd)]
    assert len(starts) == 1 and len(ends) == 1
    start, still_blocking = starts[0]
    assert still_blocking, "the incident must be reported during the freeze, not after it"
    assert start.culprit is not None
    assert Path(start.culprit.file).resolve() == HERE
    assert start.culprit.line == _line_of("BLOCKING-LINE")
    assert start.culprit.function == "culprit"
    assert start.culprit.code.startswith("time.sleep(0.3)")
    assert start.blocking_call == "time.sleep"
    assert ends[0].incident_id == start.incident_id
    # The incident only exists because the loop was silent past the threshold.
    assert ends[0].duration_s > 0.1
    assert any(f.function == "main" for f in start.stack)


def test_culprit_is_the_users_frame_not_the_library_below_it() -> None:
    clock = MonotonicClock()
    seen: list[IncidentStart] = []
    watchdog = Watchdog(
        lambda e: seen.append(e) if isinstance(e, IncidentStart) else None,
        clock,
        threshold_s=0.05,
    )

    def helper() -> None:
        # Blocks several frames deep inside the standard library (queue -> threading).
        inbox: queue.Queue[int] = queue.Queue()
        with contextlib.suppress(queue.Empty):
            inbox.get(timeout=0.2)  # HELPER-LINE

    async def main() -> None:
        watchdog.attach(asyncio.get_running_loop())
        await asyncio.sleep(0.02)
        helper()
        await asyncio.sleep(0.02)
        watchdog.detach()

    asyncio.run(main())
    assert len(seen) == 1
    culprit = seen[0].culprit
    assert culprit is not None and culprit.function == "helper"
    assert culprit.line == _line_of("HELPER-LINE")
    assert seen[0].blocking_call == "queue.Queue.get"  # named by what it is, not its variable
    origins = [f.origin for f in seen[0].stack]
    assert origins[-1] == "library", "the innermost frames are the standard library's"


def test_every_cpu_bound_freeze_is_reported_though_it_holds_the_gil() -> None:
    # A spinning step holds the GIL the watchdog needs to look at it; each freeze must still
    # become exactly one incident, whatever else competes for the GIL meanwhile.
    from cpviz.workloads._jobs import spin

    clock = MonotonicClock()
    starts: list[IncidentStart] = []
    ends: list[IncidentEnd] = []

    def emit(ev: Event) -> None:
        if isinstance(ev, IncidentStart):
            starts.append(ev)
        elif isinstance(ev, IncidentEnd):
            ends.append(ev)

    watchdog = Watchdog(emit, clock, threshold_s=0.05)
    stop = threading.Event()

    def contend() -> None:  # a neighbour that keeps asking for the GIL, as the sampler does
        while not stop.is_set():
            Path(__file__).stat()
            time.sleep(0.001)

    neighbour = threading.Thread(target=contend, daemon=True)
    neighbour.start()

    async def main() -> None:
        watchdog.attach(asyncio.get_running_loop())
        for _ in range(4):
            await asyncio.sleep(0.03)
            spin(3_000_000)
        await asyncio.sleep(0.03)
        watchdog.detach()

    try:
        asyncio.run(main())
    finally:
        stop.set()
        neighbour.join()
    assert len(starts) == 4
    assert [e.incident_id for e in ends] == [s.incident_id for s in starts]
    assert all(s.culprit is not None and s.culprit.function == "spin" for s in starts)


def test_a_responsive_loop_raises_nothing_and_reports_lag() -> None:
    clock = MonotonicClock()
    events: list[Event] = []
    watchdog = Watchdog(events.append, clock, threshold_s=0.1, lag_report_s=0.05)

    async def main() -> None:
        watchdog.attach(asyncio.get_running_loop())
        for _ in range(30):
            await asyncio.sleep(0.01)
        watchdog.detach()

    asyncio.run(main())
    assert not any(isinstance(e, IncidentStart) for e in events)
    assert any(isinstance(e, LoopLag) for e in events)


def test_classify_tells_user_library_and_engine_code_apart() -> None:
    import asyncio.base_events as base

    import cpviz.agent.lab as lab
    import cpviz.workloads.blocking as blocking

    assert classify(str(HERE)) == "user"
    assert classify(base.__file__) == "library"
    assert classify(lab.__file__) == "engine"
    assert classify(blocking.__file__) == "user"


def test_a_freeze_is_named_by_where_it_spent_most_of_its_time() -> None:
    """The start's single snapshot can land on a brief first call; the stack is sampled on
    while the loop stays frozen, and the end names the place most samples saw."""
    clock = MonotonicClock()
    events: list[Event] = []
    watchdog = Watchdog(events.append, clock, threshold_s=0.1)

    def brief() -> None:
        time.sleep(0.2)  # BRIEF-LINE

    def long() -> None:
        time.sleep(1.0)  # LONG-LINE

    async def main() -> None:
        watchdog.attach(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        brief()
        long()
        await asyncio.sleep(0.05)
        watchdog.detach()

    asyncio.run(main())
    (start,) = [e for e in events if isinstance(e, IncidentStart)]
    (end,) = [e for e in events if isinstance(e, IncidentEnd)]
    assert end.samples > 1
    named = end.culprit if end.culprit is not None else start.culprit
    assert named is not None and named.function == "long"
    assert named.line == _line_of("LONG-LINE")
    if start.culprit is not None and start.culprit.function == "brief":
        assert end.culprit is not None and end.blocking_call == "time.sleep"
    (record,) = watchdog.incidents_between(0.0, clock.now())
    assert record.function == "long" and record.line == _line_of("LONG-LINE")
