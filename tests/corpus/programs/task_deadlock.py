"""Two asyncio tasks take the same two locks in opposite orders and wait for each other forever.

Each takes its first lock, then waits until both have one before reaching for the second, so the
deadlock happens every time. Nothing has a timeout: only Ctrl+C (or --duration) ends it.
"""

import asyncio


async def left(lock_a: asyncio.Lock, lock_b: asyncio.Lock, both: asyncio.Barrier) -> None:
    async with lock_a:
        await both.wait()
        async with lock_b:
            print("left got both")


async def right(lock_a: asyncio.Lock, lock_b: asyncio.Lock, both: asyncio.Barrier) -> None:
    async with lock_b:
        await both.wait()
        async with lock_a:
            print("right got both")


async def main() -> None:
    lock_a, lock_b = asyncio.Lock(), asyncio.Lock()
    both = asyncio.Barrier(2)
    print("taking the locks", flush=True)
    await asyncio.gather(left(lock_a, lock_b, both), right(lock_a, lock_b, both))


if __name__ == "__main__":
    asyncio.run(main())
