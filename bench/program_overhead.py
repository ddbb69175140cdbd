"""What a program pays for being watched: ``cpviz run -- python prog.py`` against ``python
prog.py``, on an I/O-bound asyncio program (bench/_echo_load.py: a loopback streams server under
a client load of its own).

Pairs alternate (plain, watched, plain, …) so drift on a shared machine hits both alike; the
value is the median of the per-pair ratios of the program's own time, which it measures and
prints itself the same way in both (cpviz's start-up, about half a second once, is reported
apart). Target ≤ 1.05×.

The load is 20 × 3000 round trips (about 0.7 s plain), so the program's time is mostly its
steady state: at 20 × 300 (70 ms) the probes' one-off costs inside the program (a ring per
loop, the watchdog's thread, the first flush: about 7 ms) made up half of what it paid.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import BENCH_DIR, end_on_sigterm, leftovers, log, spread

PROGRAM = os.path.join(BENCH_DIR, "_echo_load.py")
CLIENTS, REQUESTS = 20, 3000


def timed(argv: list[str]) -> tuple[float, float, float]:
    """(the program's own time, the whole process's, the program's CPU) for one run."""
    t0 = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300)
    whole = time.perf_counter() - t0
    said = [line for line in (out.stdout + out.stderr).splitlines()
            if line.startswith("elapsed ")]
    if not said:
        raise SystemExit(f"the program did not say how long it took: {out.stderr[-500:]}")
    words = said[-1].split()
    return float(words[1]), whole, float(words[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 pairs, a tenth of the load")
    args = parser.parse_args()
    end_on_sigterm()
    pairs = 3 if args.quick else args.pairs
    load = [str(CLIENTS), str(REQUESTS // (10 if args.quick else 1))]
    plain_argv = [sys.executable, PROGRAM, *load]
    watched_argv = [sys.executable, "-m", "cpviz", "run", "--", sys.executable, PROGRAM, *load]
    timed(plain_argv)  # warm the file cache for both
    plain: list[float] = []
    watched: list[float] = []
    start_up: list[float] = []
    cpu_ratios: list[float] = []
    for i in range(pairs):
        if i % 2:  # the order flips each pair
            own, whole, cpu = timed(watched_argv)
            base, _, base_cpu = timed(plain_argv)
        else:
            base, _, base_cpu = timed(plain_argv)
            own, whole, cpu = timed(watched_argv)
        plain.append(base)
        watched.append(own)
        start_up.append(whole - own)
        cpu_ratios.append(cpu / base_cpu)
    ratios = [w / p for p, w in zip(plain, watched, strict=True)]
    ratio = statistics.median(ratios)
    left = leftovers()
    if left:
        log(f"left running: {left}")
        return 1
    log(f"plain   {spread(plain)} s")
    log(f"watched {spread(watched)} s (cpviz run -- python {os.path.basename(PROGRAM)})")
    log(f"cpviz's start-up and wind-down around it: {spread(start_up)} s")
    log(f"the program's CPU (its process, cpviz's probe threads included), watched / plain: "
        f"{spread(cpu_ratios)}")
    log(f"program overhead: {ratio:.3f}x wall (target <= 1.05x), {pairs} pairs")
    print(json.dumps({
        "metric": "program_overhead", "value": round(ratio, 3), "unit": "x", "target": 1.05,
        "better": "lower", "pairs": pairs, "plain_s": round(statistics.median(plain), 3),
        "watched_s": round(statistics.median(watched), 3),
        "cpviz_start_and_stop_s": round(statistics.median(start_up), 3),
        "ratios": [round(r, 3) for r in ratios],
        "cpu_ratio": round(statistics.median(cpu_ratios), 3), "load": {"clients": CLIENTS,
                                                           "requests": int(load[1])},
        "python": sys.version.split()[0],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
