"""A plain def main() that calls asyncio.run: the program's own loop must be traced."""

import asyncio
import time


async def amain() -> None:
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # BLOCKS


def main() -> None:
    asyncio.run(amain())


if __name__ == "__main__":
    main()
