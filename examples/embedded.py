"""A long-running service carrying cpviz's agent: ``cpviz connect`` shows it from elsewhere.

Run it, then in another terminal ``cpviz connect`` (the live screen) or
``cpviz connect --json --duration 5``. Every second one request blocks the loop with
``time.sleep``; the alarm names that line. ``kill -USR2 <pid>`` writes the flight recorder's
last 30 seconds as a recording.
"""

import asyncio
import os
import time

import cpviz.agent


async def handle(i: int) -> None:
    await asyncio.sleep(0.05)
    if i % 10 == 0:
        time.sleep(0.2)  # a blocking call in a coroutine: the freeze cpviz names


async def main() -> None:
    print(f"serving as pid {os.getpid()}; try: cpviz connect {os.getpid()}", flush=True)
    i = 0
    while True:
        i += 1
        asyncio.get_running_loop().create_task(handle(i))
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    agent = cpviz.agent.install(flight_s=30)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        agent.close()
