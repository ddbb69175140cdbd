"""Two threads take the same two locks in opposite orders and wait for each other forever.

Run as user code (``cpviz run tests/corpus/lock_order.py:main``), ``main`` starts both threads and
joins them. A barrier makes sure each holds its first lock before reaching for its second, so the
deadlock happens every time; nothing has a timeout, so only ending the process ends the run.
Importing this module does nothing.
"""

from __future__ import annotations

import threading


def forward(lock_a: threading.Lock, lock_b: threading.Lock, both: threading.Barrier) -> None:
    with lock_a:
        both.wait()
        with lock_b:
            pass


def backward(lock_a: threading.Lock, lock_b: threading.Lock, both: threading.Barrier) -> None:
    with lock_b:
        both.wait()
        with lock_a:
            pass


def main() -> None:
    lock_a, lock_b = threading.Lock(), threading.Lock()
    both = threading.Barrier(2)
    threads = [
        threading.Thread(target=forward, args=(lock_a, lock_b, both), name="forward"),
        threading.Thread(target=backward, args=(lock_a, lock_b, both), name="backward"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
