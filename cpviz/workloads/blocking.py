"""Well-behaved tickers plus one coroutine that waits, rightly or wrongly (C8, C9)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio

from cpviz.engine.contract import Param, RunContext, Workload

EXPLANATION = (
    "A few tickers wake every tick_ms, and one waiter pauses for block_ms every period_ms. "
    "sync-sleep: the waiter calls time.sleep inside a coroutine, which holds the whole event "
    "loop: the alarm flashes and names the line, and every ticker stalls (frozen) until it "
    "returns. async-sleep: the waiter awaits anyio.sleep, so the loop keeps turning and the "
    "tickers never notice. offload: the same time.sleep runs in a worker thread "
    "(anyio.to_thread.run_sync), so the loop stays free: the fix when there is no async version."
)


async def _ticker(tick_s: float, duration_s: float) -> None:
    with anyio.move_on_after(duration_s):
        while True:  # noqa: ASYNC110  (a ticker that ticks, not a poll for a flag)
            await anyio.sleep(tick_s)


async def _waiter(ctx: RunContext, block_s: float, period_s: float, duration_s: float) -> None:
    mode = ctx.mode
    deadline = anyio.current_time() + duration_s
    while anyio.current_time() < deadline:
        await anyio.sleep(max(0.0, period_s - block_s))
        if mode == "sync-sleep":
            # The bug, on purpose: a blocking sleep inside a coroutine holds the whole loop.
            time.sleep(block_s)
        elif mode == "async-sleep":
            await anyio.sleep(block_s)
        else:
            await anyio.to_thread.run_sync(time.sleep, block_s)
        ctx.advance()


async def _run(ctx: RunContext) -> None:
    p = ctx.params
    until = float(p["duration_s"])
    async with anyio.create_task_group() as tg:
        for i in range(p["tickers"]):
            tg.start_soon(_ticker, p["tick_ms"] / 1000.0, until, name=f"ticker {i}")
        tg.start_soon(
            _waiter, ctx, p["block_ms"] / 1000.0, p["period_ms"] / 1000.0, until, name="waiter"
        )


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return max(1, int(params["duration_s"] * 1000 // params["period_ms"]))


WORKLOAD = Workload(
    key="blocking",
    title="Blocking call in a coroutine",
    modes=("sync-sleep", "async-sleep", "offload"),
    params=(
        Param("tickers", int, 5, 0, 500, "well-behaved coroutines that tick"),
        Param("tick_ms", float, 50.0, 1.0, 5000.0, "how often each ticker wakes (ms)"),
        Param("block_ms", float, 300.0, 1.0, 10000.0, "how long the waiter waits (ms)"),
        Param("period_ms", float, 1000.0, 10.0, 60000.0, "how often the waiter waits (ms)"),
        Param("duration_s", float, 5.0, 0.1, 3600.0, "how long the run lasts (s)"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
)
