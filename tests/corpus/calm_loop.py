"""A loop that only awaits: nothing in it blocks, so a real-time hog on its core is the only
thing that can freeze it (tests/live/test_causes.py starts that hog)."""

from __future__ import annotations

import asyncio
import time


async def main() -> None:
    until = time.monotonic() + 3.0
    while time.monotonic() < until:
        await asyncio.sleep(0.01)
