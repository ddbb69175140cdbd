"""A garbage collection long enough to freeze the loop: about a million objects in cycles."""

from __future__ import annotations

import asyncio
import gc


class Node:
    """One half of a reference cycle, so only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.other: Node | None = None


async def main() -> None:
    gc.disable()  # let the garbage pile up, as a program that allocates heavily would
    try:
        for _ in range(3):
            pairs = []
            for _ in range(500_000):
                a, b = Node(), Node()
                a.other, b.other = b, a
                pairs.append(a)
            del pairs
            await asyncio.sleep(0.05)
            gc.collect()  # every object above is garbage now, in cycles
            await asyncio.sleep(0.3)
    finally:
        gc.enable()
