"""Workloads the benches run through the observed process, which is not in cpviz's catalogue.

The observed process (``python -m cpviz.agent``) builds its lab from a catalogue named as
``module:function``; the benches name ``"_catalogue:lab_catalogue"`` after putting this folder on
``PYTHONPATH`` (``_common.observed_path``), and the same workloads run on an in-process Lab for
comparison. Only the standard library and cpviz's run contract are imported here: this module is
loaded inside the observed process, which must not pay for anything the viewer uses.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from typing import Any

from _common import TASKS, step_heavy

from cpviz.engine.contract import RunContext, Workload

#: The catalogue as ``ObservedLab(catalogue=...)`` names it.
CATALOGUE = "_catalogue:lab_catalogue"
#: Key of the tracer benchmark's worst case as a workload.
STEPS_KEY = "steps"


async def _steps(ctx: RunContext) -> None:
    """The step-heavy pattern, timed around itself on the loop.

    A workload never times itself for the screen; here the timing *is* the benchmark: how long
    the loop took with the probes on, read where the loop runs (its thread's CPU, the process's
    CPU, which includes the streamer's, and the wall time, which includes waiting for the GIL).
    """
    # The arms run in different processes with different heaps (the viewer holds a Model and
    # Textual's imports): frozen, what was there before is not scanned again by the collector
    # during the run, so only the workload's own objects cost GC time, the same in both.
    gc.collect()
    gc.freeze()
    try:
        wall0, loop0, proc0 = time.perf_counter(), time.thread_time(), time.process_time()
        await step_heavy()
        wall1, loop1, proc1 = time.perf_counter(), time.thread_time(), time.process_time()
    finally:
        gc.unfreeze()
    ctx.extra.update(
        bench_loop_wall_s=wall1 - wall0,
        bench_loop_cpu_s=loop1 - loop0,
        bench_process_cpu_s=proc1 - proc0,
    )
    ctx.advance(TASKS)


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return TASKS


STEPS = Workload(
    key=STEPS_KEY,
    title="10,000 tasks x 10 sleep(0)",
    modes=("traced",),
    params=(),
    explanation="the tracer benchmark's worst case: every step is a bare sleep(0)",
    run=_steps,
    total=_total,
)


def lab_catalogue(user: str | None = None) -> tuple[Workload, ...]:
    """What the observed process offers (``user`` is ignored: there is no user code here)."""
    return (STEPS,)
