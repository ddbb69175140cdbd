"""Amdahl's law: the serial part of a job caps what more workers can do (C11)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import anyio

from cpviz.engine.contract import Param, RunContext, Workload, WorkloadError
from cpviz.workloads.cpu import kind_param, measured, open_team

EXPLANATION = (
    "One job of W units in two parts: a serial fraction s that one worker must do alone, then "
    "the rest split evenly over n workers, for n = 1 up to max_workers (fresh processes each "
    "time, started before the clock runs). On the lanes, each point starts with one busy lane "
    "(the serial part) before all of them fill. The measured speedup, wall(1) ÷ wall(n), is "
    "drawn beside Amdahl's law 1 / (s + (1 − s)/n): however many workers, the serial part still "
    "takes s·W, so the speedup can never pass 1/s, and past the core count it flattens sooner "
    "than the law says, since the law assumes a core per worker. threads mode with "
    "kind=python stays near ×1: the GIL makes the parallel part serial too."
)


def amdahl_speedup(serial: float, n: int) -> float:
    """Speedup Amdahl's law predicts with ``n`` workers when a fraction ``serial`` is serial.

    ``1 / (serial + (1 − serial) / n)``; ``serial`` is from 0 (all parallel: speedup n) to 1
    (all serial: speedup 1).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of workers, 1 or more, got {n!r}")
    if isinstance(serial, bool) or not isinstance(serial, int | float) or not 0 <= serial <= 1:
        raise ValueError(f"serial must be a fraction from 0 to 1, got {serial!r}")
    return 1.0 / (serial + (1.0 - serial) / n)


def split(total: int, n: int) -> list[int]:
    """``total`` units in ``n`` shares that differ by at most one, leaving out empty shares."""
    share, extra = divmod(total, n)
    return [share + (1 if i < extra else 0) for i in range(n) if share or i < extra]


def _parts(params: Mapping[str, Any]) -> tuple[int, int]:
    """The serial and parallel units of the job."""
    work: int = params["work"]
    serial_units = round(work * params["serial"])
    return serial_units, work - serial_units


async def _run(ctx: RunContext) -> None:
    s: float = ctx.params["serial"]
    kind: str = ctx.params["kind"]
    serial_units, parallel_units = _parts(ctx.params)
    wall_1 = 0.0
    best = 0.0
    for n in range(1, ctx.params["max_workers"] + 1):
        async with open_team(ctx, ctx.mode, n) as team, ctx.measure() as meter:
            if serial_units:
                await team.run(kind, serial_units)  # one worker; the others wait
                ctx.advance()

            async def share(units: int) -> None:
                await team.run(kind, units)
                ctx.advance()

            async with anyio.create_task_group() as tg:
                for i, units in enumerate(split(parallel_units, n)):
                    tg.start_soon(share, units, name=f"{n} workers: share {i}")
        m = measured(meter.result)
        if n == 1:
            wall_1 = m.wall_s
        speedup = wall_1 / m.wall_s
        best = max(best, speedup)
        ctx.point(n, speedup=speedup, law=amdahl_speedup(s, n), wall_s=m.wall_s,
                  parallelism=m.parallelism)
    ctx.extra["serial"] = s
    ctx.extra["best_speedup"] = round(best, 4)
    ctx.extra["law_at_max"] = round(amdahl_speedup(s, ctx.params["max_workers"]), 4)
    # The law's ceiling as n grows without end; none when nothing is serial.
    ctx.extra["law_limit"] = None if s == 0 else round(1.0 / s, 4)


def _total(mode: str, params: Mapping[str, Any]) -> int:
    serial_units, parallel_units = _parts(params)
    return sum(
        (1 if serial_units else 0) + len(split(parallel_units, n))
        for n in range(1, int(params["max_workers"]) + 1)
    )


def _check(mode: str, params: Mapping[str, Any]) -> None:
    if not math.isfinite(params["serial"]):  # NaN slips through a range check
        raise WorkloadError(f"serial must be a fraction from 0 to 1, got {params['serial']}")


WORKLOAD = Workload(
    key="amdahl",
    title="Amdahl's law",
    modes=("processes", "threads"),
    params=(
        Param("serial", float, 0.2, 0.0, 1.0, "the fraction of the job only one worker can do"),
        Param("work", int, 20_000_000, 1_000, 1_000_000_000,
              "the whole job: loop iterations, or 128 bytes hashed / 2 bytes compressed each"),
        Param("max_workers", int, min(64, 2 * (os.cpu_count() or 1)), 1, 64,
              "workers go from 1 to this (default twice the cores)"),
        kind_param(),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
    check=_check,
)
