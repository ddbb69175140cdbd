"""Two workers, two locks, opposite orders: a deadlock nobody crashes out of (C13).

The sides are written out for each lock order on purpose: the no-progress alarm names the lock by
the variable the waiting frame holds it in, so the line it points at reads ``lock_b``, not
``second``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.from_thread

from cpviz.engine.contract import Param, RunContext, Workload

EXPLANATION = (
    "Two workers, left and right, each need lock_a and lock_b at once. In tasks and threads "
    "modes left takes lock_a first and right takes lock_b first, and each holds its first lock "
    "for hold_ms before reaching for the second, so each ends up holding what the other wants. "
    "Nothing crashes and nothing burns CPU: the timeline and the lanes simply go quiet, and once "
    "a run has gone a while with no step and nothing due to wake it, the no-progress alarm "
    "names both waiters, the lock each waits on, who holds it, and the line. ordered and "
    "ordered-threads take lock_a first on both sides, so one worker waits its turn and every "
    "round completes. A stuck run gives up after give_up_s and reports deadlocked."
)

MODES = ("tasks", "threads", "ordered", "ordered-threads")

#: How often a waiting thread looks up from its lock to see whether the run was stopped.
POLL_S = 0.05


class _Scene:
    """Who holds and who wants which lock right now, kept by the workers themselves."""

    def __init__(self) -> None:
        self.holds: dict[str, set[str]] = {"left": set(), "right": set()}
        self.wants: dict[str, str | None] = {"left": None, "right": None}
        #: :meth:`cycle` at the moment the run was cancelled, before the threads let go.
        self.cycle_at_cancel = False

    def cycle(self) -> bool:
        """Each side wants a lock the other side holds: neither can ever go on."""
        left, right = self.wants["left"], self.wants["right"]
        return (
            left is not None
            and right is not None
            and left in self.holds["right"]
            and right in self.holds["left"]
        )


async def _task_side(
    ctx: RunContext,
    scene: _Scene,
    me: str,
    lock_a: anyio.Lock,
    lock_b: anyio.Lock,
    a_first: bool,
    rounds: int,
    hold_s: float,
) -> None:
    holds, wants = scene.holds[me], scene.wants
    for _ in range(rounds):
        if a_first:
            wants[me] = "lock_a"
            async with lock_a:
                wants[me] = None
                holds.add("lock_a")
                await anyio.sleep(hold_s)
                wants[me] = "lock_b"
                async with lock_b:
                    wants[me] = None
                    ctx.advance()
                holds.discard("lock_a")
        else:
            wants[me] = "lock_b"
            async with lock_b:
                wants[me] = None
                holds.add("lock_b")
                await anyio.sleep(hold_s)
                wants[me] = "lock_a"
                async with lock_a:
                    wants[me] = None
                    ctx.advance()
                holds.discard("lock_b")


def _thread_side(
    scene: _Scene,
    me: str,
    lock_a: threading.Lock,
    lock_b: threading.Lock,
    a_first: bool,
    rounds: int,
    hold_s: float,
    stop: threading.Event,
    advance: Callable[[], None],
) -> None:
    """One side in a worker thread. Every wait is timed, so a stop is noticed within POLL_S."""
    thread = threading.current_thread()
    previous, thread.name = thread.name, me  # the lanes and the alarm show "left"/"right"
    holds, wants = scene.holds[me], scene.wants
    try:
        for _ in range(rounds):
            if a_first:
                wants[me] = "lock_a"
                while not lock_a.acquire(timeout=POLL_S):
                    if stop.is_set():
                        return
                wants[me] = None
                holds.add("lock_a")
                try:
                    if stop.wait(hold_s):
                        return
                    wants[me] = "lock_b"
                    while not lock_b.acquire(timeout=POLL_S):
                        if stop.is_set():
                            return
                    wants[me] = None
                    lock_b.release()
                finally:
                    holds.discard("lock_a")
                    lock_a.release()
            else:
                wants[me] = "lock_b"
                while not lock_b.acquire(timeout=POLL_S):
                    if stop.is_set():
                        return
                wants[me] = None
                holds.add("lock_b")
                try:
                    if stop.wait(hold_s):
                        return
                    wants[me] = "lock_a"
                    while not lock_a.acquire(timeout=POLL_S):
                        if stop.is_set():
                            return
                    wants[me] = None
                    lock_a.release()
                finally:
                    holds.discard("lock_b")
                    lock_b.release()
            with contextlib.suppress(RuntimeError):  # the lab may be closing
                anyio.from_thread.run_sync(advance)
    finally:
        thread.name = previous


async def _stop_threads_on_cancel(scene: _Scene, stop: threading.Event) -> None:
    """Tell the threads to let go once the run is cancelled (stopped, or giving up)."""
    try:
        await anyio.sleep_forever()
    finally:
        scene.cycle_at_cancel = scene.cycle()
        stop.set()


async def _tasks(ctx: RunContext, scene: _Scene, rounds: int, hold_s: float) -> None:
    lock_a, lock_b = anyio.Lock(), anyio.Lock()
    crossed = ctx.mode == "tasks"
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            _task_side, ctx, scene, "left", lock_a, lock_b, True, rounds, hold_s, name="left"
        )
        tg.start_soon(
            _task_side, ctx, scene, "right", lock_a, lock_b, not crossed, rounds, hold_s,
            name="right",
        )


async def _threads(ctx: RunContext, scene: _Scene, rounds: int, hold_s: float) -> None:
    lock_a, lock_b = threading.Lock(), threading.Lock()
    crossed = ctx.mode == "threads"
    stop = threading.Event()

    async def side(me: str, a_first: bool) -> None:
        # Not abandoned on cancel: the run ends only once its thread has really let go.
        await anyio.to_thread.run_sync(
            _thread_side, scene, me, lock_a, lock_b, a_first, rounds, hold_s, stop, ctx.advance
        )

    async with anyio.create_task_group() as outer:
        outer.start_soon(_stop_threads_on_cancel, scene, stop, name="stop on cancel")
        async with anyio.create_task_group() as tg:
            tg.start_soon(side, "left", True, name="left")
            tg.start_soon(side, "right", not crossed, name="right")
        outer.cancel_scope.cancel()


async def _run(ctx: RunContext) -> None:
    p = ctx.params
    rounds: int = p["rounds"]
    hold_s = p["hold_ms"] / 1000.0
    scene = _Scene()
    threads = ctx.mode in ("threads", "ordered-threads")
    with anyio.move_on_after(p["give_up_s"]) as give_up:
        if threads:
            await _threads(ctx, scene, rounds, hold_s)
        else:
            await _tasks(ctx, scene, rounds, hold_s)
    stuck = give_up.cancelled_caught
    # From the workers' own record of what they held and wanted when the run gave up (tasks
    # leave theirs as it was; threads clean up as they let go, so theirs was read before).
    ctx.extra["deadlocked"] = stuck and (scene.cycle_at_cancel if threads else scene.cycle())
    ctx.extra["gave_up"] = stuck
    ctx.extra["sections_completed"] = ctx.done


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return 2 * int(params["rounds"])


WORKLOAD = Workload(
    key="deadlock",
    title="Locks taken in opposite orders",
    modes=MODES,
    params=(
        Param("rounds", int, 10, 1, 10_000, "times each worker takes both locks"),
        Param(
            "hold_ms", float, 100.0, 0.0, 10_000.0,
            "how long a worker holds its first lock before taking the second (ms)",
        ),
        Param(
            "give_up_s", float, 5.0, 0.1, 3600.0,
            "a run still going after this long cancels itself (s)",
        ),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
)
