"""A script as people write them: asyncio.run(main(...)) under __main__, with arguments."""

import asyncio
import sys
import time


async def fetch(i: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return i


async def main(n: int, delay: float) -> None:
    print(f"fetching {n}", flush=True)
    time.sleep(0.3)  # BLOCKS
    results = await asyncio.gather(*(fetch(i, delay) for i in range(n)))
    print("got", len(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
