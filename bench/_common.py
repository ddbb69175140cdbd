"""What the benchmark scripts share."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time

#: The step-heavy worst case the tracer and recording benchmarks share: many tasks that do
#: nothing but yield, so every microsecond per step shows.
TASKS = 10_000
AWAITS = 10
#: Each task runs once at start and once after each await.
EXPECTED_STEPS = TASKS * (AWAITS + 1)


async def _yielder() -> None:
    for _ in range(AWAITS):
        await asyncio.sleep(0)


async def step_heavy() -> None:
    """TASKS tasks each awaiting ``sleep(0)`` AWAITS times, on the running loop."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(_yielder()) for _ in range(TASKS)])


def leftovers(grace_s: float = 2.0) -> list[str]:
    """Threads and child processes still alive; the script must leave none behind.

    AnyIO's worker threads are told to stop when the lab loop ends but nobody joins them, so
    one may still be on its way out right after ``Lab.close``: give such threads a moment.
    """
    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    children = [f"pid {p.pid}" for p in multiprocessing.active_children()]
    return threads + children

