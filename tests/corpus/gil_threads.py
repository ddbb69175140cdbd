"""Eight pure-Python threads beside a loop that only awaits sleep: the loop's own code never
blocks, so any freeze is the GIL's (or no freeze at all). A launcher thread starts them, so the
loop never waits in ``Thread.start`` while they hold the GIL."""

from __future__ import annotations

import asyncio
import threading
import time

SPIN_S = 2.0


def spin(until: float) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1


def launch(until: float) -> None:
    threads = [threading.Thread(target=spin, args=(until,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


async def main() -> None:
    until = time.monotonic() + SPIN_S
    launcher = threading.Thread(target=launch, args=(until,))
    launcher.start()
    while time.monotonic() < until + 0.1:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(launcher.join)
