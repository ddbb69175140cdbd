"""A trio program with a blocking call in it."""

import time

import trio


async def worker() -> None:
    for _ in range(3):
        await trio.sleep(0.05)


async def main() -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(worker)
        await trio.sleep(0.1)
        time.sleep(0.3)  # BLOCKS


if __name__ == "__main__":
    trio.run(main)
