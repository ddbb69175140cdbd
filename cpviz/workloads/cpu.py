"""CPU-bound jobs serially, in threads, in processes, and on the loop (C1, C4, C5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel

from cpviz.workloads._jobs import spin
from cpviz.workloads.registry import Param, RunContext, Workload

EXPLANATION = (
    "J jobs of pure-Python arithmetic. serial: one job after another in a worker thread, one "
    "core busy. threads: all jobs at once in threads; in CPython the GIL lets only one run "
    "Python at a time, so total load stays about one core even when it hops between lanes "
    "(parallelism ≈ 1). processes: each job in its own worker process, so every lane fills "
    "and parallelism approaches the core count. loop: the jobs run on the event loop itself; "
    "one lane is busy, the loop is frozen during each job and the alarm names the line."
)


async def _run(ctx: RunContext) -> None:
    jobs: int = ctx.params["jobs"]
    work: int = ctx.params["work"]
    mode = ctx.mode
    if mode == "loop":
        for _ in range(jobs):
            spin(work)  # deliberately on the loop: this is what freezes it
            ctx.advance()
            await anyio.lowlevel.checkpoint()
    elif mode == "serial":
        limiter = anyio.CapacityLimiter(1)
        for _ in range(jobs):
            await anyio.to_thread.run_sync(spin, work, limiter=limiter)
            ctx.advance()
    else:
        limiter = anyio.CapacityLimiter(jobs)

        async def one() -> None:
            if mode == "threads":
                await anyio.to_thread.run_sync(spin, work, limiter=limiter)
            else:
                await ctx.in_process(spin, work)
            ctx.advance()

        async with anyio.create_task_group() as tg:
            for i in range(jobs):
                tg.start_soon(one, name=f"job {i}")


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return int(params["jobs"])


WORKLOAD = Workload(
    key="cpu",
    title="CPU-bound jobs",
    modes=("threads", "processes", "serial", "loop"),
    params=(
        Param("jobs", int, 8, 1, 256, "number of jobs"),
        Param("work", int, 2_500_000, 1_000, 200_000_000, "loop iterations per job"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
    serial_mode="serial",
)
