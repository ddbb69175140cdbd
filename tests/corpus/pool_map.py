"""A plain ``def main()`` that maps busy work over a process pool: all of it is progress.

Run as user code (``cpviz run tests/corpus/pool_map.py:main``), ``main`` runs in a worker thread
that waits inside ``Pool.map`` while the pool's processes compute: no task steps for seconds, yet
nothing is stuck. In ``long_items`` each item outlasts the stall threshold (1 s), so for a while
not even a result comes back: only the workers' CPU shows the work. Importing this does nothing.
"""

from __future__ import annotations

import functools
import multiprocessing
import time

#: How long each item keeps a worker process busy (s).
SPIN_S = 0.5
#: ...and in ``long_items``, longer than the stall threshold.
LONG_SPIN_S = 1.5


def busy(i: int, seconds: float = SPIN_S) -> int:
    """Burn CPU for ``seconds``: a worker that computes, not one that waits."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return i


def main() -> None:
    with multiprocessing.Pool(2) as pool:
        pool.map(busy, range(8))


def long_items() -> None:
    with multiprocessing.Pool(2) as pool:
        pool.map(functools.partial(busy, seconds=LONG_SPIN_S), range(4))


if __name__ == "__main__":
    main()
