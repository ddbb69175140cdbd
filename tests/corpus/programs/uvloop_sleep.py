"""An asyncio program on uvloop, with a blocking call in a coroutine.

uvloop's loop is C code: cpviz cannot trace its task steps, but its heartbeat still runs on it,
so the freeze is caught and named at its line. ``python uvloop_sleep.py runner`` makes the loop
through ``asyncio.Runner(loop_factory=...)`` instead of ``uvloop.run``.
"""

import asyncio
import sys
import time

import uvloop


async def tick(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0.02)


async def main() -> None:
    ticker = asyncio.create_task(tick(20))
    await asyncio.sleep(0.1)
    time.sleep(0.3)  # BLOCKS
    await ticker
    print("done")


if __name__ == "__main__":
    if sys.argv[1:] == ["runner"]:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        uvloop.run(main())
