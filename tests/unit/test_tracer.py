"""The tracer records, from the scheduler, every step of a known task pattern."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

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


# -- the tracer's observable output, pinned ------------------------------------------------------
# What the screen shows comes from these records alone, so speed work on the hot path must keep
# them exactly: one record per step in the order the loop ran them, each with ready <= start <=
# end; a continuation ready when the step that scheduled it ended; a wake-up ready while its
# waker ran; the done flag on a task's last step only; spawns with their parents, before the
# spawned task's first step; asyncio's default names replaced by the coroutine's.




def _steps_of(events: list[Event]) -> tuple[dict[str, TaskSpawn], dict[int, list[TaskStep]]]:
    spawns = {e.name: e for e in events if isinstance(e, TaskSpawn)}
    steps: dict[int, list[TaskStep]] = {}
    for e in events:
        if isinstance(e, TaskStep):
            steps.setdefault(e.task_id, []).append(e)
    return spawns, steps


def test_steps_agree_with_the_order_the_code_ran_in() -> None:
    ran: list[tuple[str, float]] = []

    async def worker(label: str, yields: int) -> None:
        for _ in range(yields):
            ran.append((label, time.perf_counter()))
            await asyncio.sleep(0)
        ran.append((label, time.perf_counter()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(worker(f"w{i}", i), name=f"w{i}") for i in range(4)]
        await asyncio.gather(*tasks)

    events = _trace(main, capacity=1 << 14)
    spawns, steps = _steps_of(events)
    names = {s.task_id: name for name, s in spawns.items() if name.startswith("w")}
    ordered = [e for e in events if isinstance(e, TaskStep) and e.task_id in names]
    # One record per step, in the order the code ran, and each step's code ran inside it.
    assert [names[s.task_id] for s in ordered] == [label for label, _ in ran]
    for step, (_, at) in zip(ordered, ran, strict=True):
        assert step.start <= at <= step.end
    everything = [e for e in events if isinstance(e, TaskStep)]
    for before, after in pairwise(everything):
        assert before.end <= after.start  # one loop thread: steps never overlap
    for i in range(4):
        mine = steps[spawns[f"w{i}"].task_id]
        assert len(mine) == i + 1
        assert [s.final for s in mine] == [False] * i + [True]
        for s in mine:
            assert s.ready <= s.start <= s.end
        # A sleep(0) continuation became ready when the step that scheduled it ended.
        for prev, nxt in pairwise(mine):
            assert prev.start <= nxt.ready <= prev.end <= nxt.start


def test_a_wakeup_is_ready_while_its_waker_runs() -> None:
    async def waiter(fut: asyncio.Future[int]) -> int:
        return await fut

    async def waker(fut: asyncio.Future[int]) -> None:
        await asyncio.sleep(0)
        fut.set_result(1)
        time.sleep(0.002)  # the wake-up is ready well before this step ends

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        w = loop.create_task(waiter(fut), name="waiter")
        k = loop.create_task(waker(fut), name="waker")
        await asyncio.gather(w, k)

    events = _trace(main)
    spawns, steps = _steps_of(events)
    waiter_steps = steps[spawns["waiter"].task_id]
    waker_steps = steps[spawns["waker"].task_id]
    assert len(waiter_steps) == 2 and len(waker_steps) == 2
    woken, setter = waiter_steps[1], waker_steps[1]
    assert setter.start <= woken.ready < setter.end <= woken.start
    assert woken.final and setter.final
    assert not waiter_steps[0].final and not waker_steps[0].final


def test_a_wakeup_from_another_thread_is_ready_when_it_was_scheduled() -> None:
    import threading

    marks: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def other() -> None:
            time.sleep(0.01)
            marks.append(time.perf_counter())
            loop.call_soon_threadsafe(fut.set_result, None)
            marks.append(time.perf_counter())

        async def sleeper() -> None:
            await fut

        task = loop.create_task(sleeper(), name="sleeper")
        thread = threading.Thread(target=other)
        thread.start()
        await task
        thread.join()

    events = _trace(main)
    spawns, steps = _steps_of(events)
    mine = steps[spawns["sleeper"].task_id]
    assert len(mine) == 2 and [s.final for s in mine] == [False, True]
    # set_result ran on the loop (a plain callback) after the thread's call; the step it woke
    # was ready then, not before the thread asked.
    assert mine[1].ready >= marks[0]
    assert mine[1].ready <= mine[1].start <= mine[1].end


def test_the_done_flag_marks_the_last_step_of_failed_and_cancelled_tasks() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bad = loop.create_task(fails(), name="fails")
        early = loop.create_task(forever(), name="early")
        early.cancel()  # before its first step
        late = loop.create_task(forever(), name="late")
        await asyncio.sleep(0)
        late.cancel()
        results = await asyncio.gather(bad, early, late, return_exceptions=True)
        assert isinstance(results[0], ValueError)

    events = _trace(main)
    spawns, steps = _steps_of(events)
    assert [s.final for s in steps[spawns["fails"].task_id]] == [False, True]
    assert [s.final for s in steps[spawns["early"].task_id]] == [True]
    assert [s.final for s in steps[spawns["late"].task_id]] == [False, True]
    # Every traced task that ended has exactly one final step, its last.
    for task_steps in steps.values():
        finals = [s.final for s in task_steps]
        assert finals.count(True) <= 1 and (True not in finals or finals[-1])


def test_spawns_name_their_parent_and_come_before_the_first_step() -> None:
    async def leaf() -> None:
        await asyncio.sleep(0)

    async def middle() -> None:
        await asyncio.create_task(leaf(), name="leaf")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        # Spawned from a plain callback, outside any task: no parent.
        loop.call_soon(lambda: done.set_result(loop.create_task(leaf(), name="orphan")))
        orphan = await done
        await asyncio.gather(orphan, loop.create_task(middle(), name="middle"))

    events = _trace(main)
    spawns, steps = _steps_of(events)
    main_id = next(s.task_id for s in spawns.values() if s.name.endswith("main"))
    assert spawns["middle"].parent_id == main_id
    assert spawns["leaf"].parent_id == spawns["middle"].task_id
    assert spawns["orphan"].parent_id == 0
    position = {id(e): i for i, e in enumerate(events)}
    for spawn in spawns.values():
        first = steps[spawn.task_id][0]
        assert position[id(spawn)] < position[id(first)]
        assert spawn.t <= first.start


def test_default_named_tasks_show_their_coroutine() -> None:
    async def fetch_page() -> None:
        await asyncio.sleep(0)

    class Handler:
        async def serve(self) -> None:
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(asyncio.create_task(fetch_page()),
                             asyncio.create_task(Handler().serve()),
                             asyncio.create_task(fetch_page(), name="given"))

    events = _trace(main)
    names = [e.name for e in events if isinstance(e, TaskSpawn)]
    assert fetch_page.__qualname__ in names
    assert Handler.serve.__qualname__ in names
    assert "given" in names
    assert not any(n.startswith("Task-") for n in names)


def test_the_raw_drain_carries_the_same_records() -> None:
    """What the streamer sends (raw ring slices and spawn fields) decodes to what drain gives."""
    from cpviz.engine.wire import decode_steps

    async def yielder(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(yielder(i), name=f"y{i}") for i in range(5)))

    loop = asyncio.new_event_loop()
    tracer = Tracer(capacity=1 << 10, origin=1.5)
    order: list[str] = []
    raw_steps: list[Event] = []
    spawned: dict[str, int] = {}
    try:
        tracer.attach(loop)
        loop.run_until_complete(main())

        def steps(raw: bytes) -> None:
            order.append("steps")
            decode_steps(raw, tracer.origin, raw_steps)

        def spawn(at: float, task_id: int, name: str, run: int, parent: int) -> None:
            order.append("spawn")
            spawned[name] = task_id

        tracer.drain_raw(steps, spawn, lambda event: None)
    finally:
        tracer.detach()
        loop.close()
    assert order[0] == "spawn" and "steps" in order
    per_task: dict[int, list[TaskStep]] = {}
    for e in raw_steps:
        assert isinstance(e, TaskStep)
        per_task.setdefault(e.task_id, []).append(e)
    for i in range(5):
        mine = per_task[spawned[f"y{i}"]]
        assert len(mine) == i + 1 and mine[-1].final and not any(s.final for s in mine[:-1])
        assert all(s.ready <= s.start <= s.end for s in mine)
