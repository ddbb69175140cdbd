"""What the thread and process rows' sampler costs the viewer: 100 Hz against 10 Hz.

The observed side here is a process with 20 threads (2 of them running pure Python, so the
18 others sleep in a futex while a sibling runs: the case that also reads their wchan) and 8
child processes. This script is the viewer: it runs :class:`cpviz.engine.osrows.OsRows` on that
tree and measures its own CPU (``time.process_time``: all its threads) over windows that
alternate between 100 Hz and 10 Hz. The value is the median of the paired differences, in
cores: what sampling at 100 Hz adds over sampling at 10 Hz. Target: <= 0.03 of a core.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time

from _common import end_on_sigterm, leftovers, log, spread, window_options

from cpviz.engine.clock import MonotonicClock
from cpviz.engine.osrows import OsRows, supported

TARGET = 0.03
THREADS = 20
PROCESSES = 8
#: Seconds for the tree to start before the first window.
SETTLE_S = 1.0

TREE = f"""
import subprocess, sys, threading, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        for _ in range({PROCESSES})]
stop = threading.Event()
def spin():
    while not stop.is_set():
        sum(range(10_000))
def idle():
    stop.wait()
threads = [threading.Thread(target=spin if i < 2 else idle, daemon=True)
           for i in range({THREADS} - 1)]
for t in threads:
    t.start()
try:
    sys.stdin.read()
finally:
    stop.set()
    for k in kids:
        k.kill()
        k.wait()
"""


def window(rows: OsRows, hz: float, seconds: float) -> float:
    """This process's CPU over ``seconds`` with the sampler at ``hz``, in cores."""
    rows.busy_hz = hz
    rows.busy(False)
    rows.busy(True)  # wake it, so the new rate applies at once
    time.sleep(0.2)
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - cpu0) / (time.perf_counter() - t0)


def main() -> None:
    runs, seconds = window_options(__doc__, window=4.0, quick_window=2.0,
                                   what="pairs of windows")
    end_on_sigterm()
    if not supported():
        sys.exit("FAIL: this platform shows no per-thread schedstat")

    began = time.perf_counter()
    fast: list[float] = []
    slow: list[float] = []
    tasks = 0
    tree = subprocess.Popen([sys.executable, "-c", TREE], stdin=subprocess.PIPE)
    rows = OsRows(MonotonicClock(), lambda: (tree.pid, {}))
    try:
        rows.start()
        rows.busy(True)
        time.sleep(SETTLE_S)
        for i in range(runs):
            # Alternating which goes first, so a drift in the machine's load favours neither.
            order = (100.0, 10.0) if i % 2 == 0 else (10.0, 100.0)
            got = {hz: window(rows, hz, seconds) for hz in order}
            fast.append(got[100.0])
            slow.append(got[10.0])
            tasks = len(rows._tasks)
            log(f"pair {i + 1}/{runs}: 100 Hz {got[100.0]:.4f}, 10 Hz {got[10.0]:.4f} of a core "
                f"({tasks} threads read)")
    finally:
        rows.stop()
        if tree.stdin is not None:
            tree.stdin.close()
        try:
            tree.wait(10)
        except subprocess.TimeoutExpired:
            tree.kill()
            tree.wait()

    left = leftovers(gone=[tree.pid])
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    extra = [f - s for f, s in zip(fast, slow, strict=True)]
    value = statistics.median(extra)
    log(f"100 Hz: {spread(fast, '.4f')}; 10 Hz: {spread(slow, '.4f')}")
    log(f"sampler cost: {value:.4f} of a core extra at 100 Hz (target <= {TARGET}); "
        f"took {time.perf_counter() - began:.0f} s")
    print(json.dumps({
        "metric": "sampler_cost",
        "value": round(value, 4),
        "unit": "cores",
        "target": TARGET,
        "better": "lower",
        "runs": runs,
        "window_s": seconds,
        "min": round(min(extra), 4),
        "max": round(max(extra), 4),
        "at_100hz": round(statistics.median(fast), 4),
        "at_10hz": round(statistics.median(slow), 4),
        "threads_read": tasks,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
