"""A multiprocessing.Pool script: its workers are processes of the observed tree."""

import multiprocessing
import time


def busy(i: int) -> int:
    end = time.perf_counter() + 0.4
    n = 0
    while time.perf_counter() < end:
        n += 1
    return i


if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print(sum(pool.map(busy, range(8))), flush=True)
