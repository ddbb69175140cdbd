"""The same CPU work with more and more workers: past the core count it stops paying (C10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpviz.engine.contract import Param, RunContext, Workload, WorkloadError
from cpviz.workloads.cpu import batch, kind_param, measured, open_team, usable_cores

EXPLANATION = (
    "The same batch of J CPU jobs is handed to 1, 2, 4 … up to max_workers workers, a fresh set "
    "for each count; each point is measured after the workers are up, so their start-up "
    "(the startup phases) is not counted. Watch the lanes: once there are as many busy workers "
    "as cores they are all full, and more workers only take turns on the same cores. So "
    "throughput climbs to the core count and then flattens or falls, while context switches "
    "climb, because the OS keeps swapping workers in and out. In threads mode with kind=python "
    "it never climbs at all: the GIL lets one thread compute at a time however many there are."
)


def worker_counts(max_workers: int, cores: int) -> list[int]:
    """1, 2, 4 … up to ``max_workers``, plus the core count and ``max_workers`` themselves."""
    counts = {max_workers}
    n = 1
    while n <= max_workers:
        counts.add(n)
        n *= 2
    if cores <= max_workers:
        counts.add(cores)
    return sorted(counts)


async def _run(ctx: RunContext) -> None:
    jobs: int = ctx.params["jobs"]
    work: int = ctx.params["work"]
    kind: str = ctx.params["kind"]
    cores = usable_cores()
    throughput: dict[int, float] = {}
    for n in worker_counts(ctx.params["max_workers"], cores):
        # A fresh set of n workers per point, so that "n workers" is literally all there is:
        # one big pool behind a limiter would keep idle extras and hand jobs to any of them.
        async with open_team(ctx, ctx.mode, n) as team:
            async with ctx.measure() as meter:
                await batch(ctx, team, kind, work, jobs, f"{n} workers: ")
            m = measured(meter.result)
            throughput[n] = jobs / m.wall_s
            ctx.point(
                n,
                throughput=throughput[n],
                ctx_switches=m.ctx_switches,
                ctx_switches_per_s=m.ctx_switches / m.wall_s,
                parallelism=m.parallelism,
                wall_s=m.wall_s,
                startup_s=team.startup_s or 0.0,
            )
    best = max(throughput, key=lambda n: throughput[n])
    largest = max(throughput)  # the largest worker count tried
    ctx.extra["cores"] = cores
    ctx.extra["best_workers"] = best
    ctx.extra["best_jobs_per_s"] = round(throughput[best], 3)
    if cores in throughput:
        ctx.extra["jobs_per_s_at_cores"] = round(throughput[cores], 3)
    ctx.extra["jobs_per_s_at_max"] = round(throughput[largest], 3)


def _total(mode: str, params: Mapping[str, Any]) -> int:
    points = worker_counts(int(params["max_workers"]), usable_cores())
    return int(params["jobs"]) * len(points)


def _check(mode: str, params: Mapping[str, Any]) -> None:
    if params["jobs"] < params["max_workers"]:
        raise WorkloadError(
            f"jobs must be at least max_workers ({params['max_workers']}), got {params['jobs']}:"
            " with fewer jobs than workers the extra workers would have nothing to do"
        )


WORKLOAD = Workload(
    key="oversubscribe",
    title="More workers than cores",
    modes=("threads", "processes"),
    params=(
        Param("max_workers", int, 64, 1, 256, "the largest number of workers tried"),
        Param("jobs", int, 64, 1, 4096, "jobs in the batch every worker count shares"),
        Param("work", int, 400_000, 1_000, 200_000_000,
              "work per job: loop iterations, or 128 bytes hashed / 2 bytes compressed each"),
        kind_param(),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
    check=_check,
)
