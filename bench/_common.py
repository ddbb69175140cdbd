"""What the benchmark scripts share."""

from __future__ import annotations

import multiprocessing
import threading
import time


def leftovers(grace_s: float = 2.0) -> list[str]:
    """Threads and child processes still alive; the script must leave none behind.

    AnyIO's worker threads are told to stop when the lab loop ends but nobody joins them, so
    one may still be on its way out right after ``Lab.close``: give such threads a moment.
    """
    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    children = [f"pid {p.pid}" for p in multiprocessing.active_children()]
    return threads + children

