"""The tracer records, from the scheduler, every step of a known task pattern."""

from __future__ import annotations

import asyncio
import time

from cpviz.agent.tracer import RUN_ID, Tracer
from cpviz.engine.events import Event, TaskSpawn, TaskStep


def _trace(main_factory, capacity: int = 1 << 12) -> list[Event]:
    loop = asyncio.new_event_loop()
    tracer = Tracer(capacity=capacity)
    try:
        tracer.attach(loop)
        loop.run_until_complete(main_factory())
        out: list[Event] = []
        tracer.drain(out)
        return out
    finally:
        tracer.detach()
        loop.close()


def test_records_each_step_with_names_parents_and_final_flag() -> None:
    async def yielder(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def main() -> None:
        a = asyncio.get_running_loop().create_task(yielder(3), name="three")
        b = asyncio.get_running_loop().create_task(yielder(1), name="one")
        await asyncio.gather(a, b)

    events = _trace(main)
    spawns = {e.task_id: e for e in events if isinstance(e, TaskSpawn)}
    steps = [e for e in events if isinstance(e, TaskStep)]
    by_name = {s.name: s for s in spawns.values()}
    assert {"three", "one"} <= set(by_name)
    three = [s for s in steps if s.task_id == by_name["three"].task_id]
    one = [s for s in steps if s.task_id == by_name["one"].task_id]
    # n sleep(0) yields -> n + 1 steps: the first step, then one per yield.
    assert len(three) == 4
    assert len(one) == 2
    assert [s.final for s in three] == [False, False, False, True]
    # Both were spawned by the main task, which is itself traced.
    parent = by_name["three"].parent_id
    assert parent != 0 and parent == by_name["one"].parent_id and parent in spawns
    for s in steps:
        assert s.ready <= s.start <= s.end
    # Steps come out in the order the loop ran them.
    starts = [s.start for s in steps]
    assert starts == sorted(starts)


def test_ready_but_not_running_is_measured_from_the_wakeup() -> None:
    order: list[str] = []

    async def hog() -> None:
        await asyncio.sleep(0)
        order.append("hog")
        time.sleep(0.05)  # blocks the loop while "patient" is already ready

    async def patient() -> None:
        await asyncio.sleep(0)
        order.append("patient")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            loop.create_task(hog(), name="hog"), loop.create_task(patient(), name="patient")
        )

    events = _trace(main)
    spawns = {e.name: e.task_id for e in events if isinstance(e, TaskSpawn)}
    steps = [e for e in events if isinstance(e, TaskStep)]
    hog_block = [s for s in steps if s.task_id == spawns["hog"]][1]
    patient_second = [s for s in steps if s.task_id == spawns["patient"]][1]
    assert order == ["hog", "patient"]
    # The patient task was woken before the hog's blocking step began, and could only start
    # after it ended: its ready interval spans the whole blocking step.
    assert patient_second.ready <= hog_block.start
    assert patient_second.start >= hog_block.end


def test_tasks_inherit_the_run_they_were_started_in() -> None:
    async def child() -> None:
        await asyncio.sleep(0)

    async def run_root() -> None:
        RUN_ID.set(7)
        await asyncio.get_running_loop().create_task(child(), name="child")

    async def main() -> None:
        await asyncio.get_running_loop().create_task(child(), name="outsider")
        await run_root()

    events = _trace(main)
    runs = {e.name: e.run_id for e in events if isinstance(e, TaskSpawn)}
    assert runs["child"] == 7
    assert runs["outsider"] == 0


def test_a_full_ring_drops_and_counts_instead_of_overwriting() -> None:
    async def yielder() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    tracer = Tracer(capacity=64)
    try:
        tracer.attach(loop)
        loop.run_until_complete(loop.create_task(yielder()))
        out: list[Event] = []
        dropped = tracer.drain(out)
    finally:
        tracer.detach()
        loop.close()
    steps = [e for e in out if isinstance(e, TaskStep)]
    assert len(steps) == 64
    assert dropped > 0 and tracer.dropped == dropped
    assert sum(isinstance(e, TaskSpawn) for e in out) == 1
    # What was kept is the oldest, intact and in order.
    assert [s.start for s in steps] == sorted(s.start for s in steps)


def test_detach_restores_the_loop() -> None:
    loop = asyncio.new_event_loop()
    tracer = Tracer()
    try:
        tracer.attach(loop)
        tracer.detach()
        assert "_call_soon" not in vars(loop)
        assert loop.get_task_factory() is None

        async def noop() -> None:
            await asyncio.sleep(0)

        loop.run_until_complete(noop())
        out: list[Event] = []
        tracer.drain(out)
        assert out == []
    finally:
        loop.close()
