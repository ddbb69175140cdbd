"""Tracer overhead: how much slower a step-heavy asyncio program runs with cpviz's tracer on.

The pattern is the tracer's worst case: 10,000 tasks that each yield 10 times with
``asyncio.sleep(0)``, so nearly all the time is scheduling and every step goes through the
tracer's hot path. Each sample is a fresh event loop, traced or not, run in alternating pairs
(the order flips each pair so neither side always runs on a warmer machine). We time the loop
thread's CPU (``time.thread_time``): the program is single-threaded, and CPU time is much
steadier than wall time on a shared, noisy machine. The wall-clock ratio is reported too.

For context, two other ways to see task steps, timed on the same pattern in the same run (not
with ``--quick``): asyncio's debug mode (one run, against the untraced median), and VizTracer
with ``log_async=True``, in alternating pairs of its own against an untraced loop in the same
interpreter. VizTracer is no dependency of cpviz: give an interpreter that has it (and psutil,
for ``_common``) with ``--viztracer``, e.g. ``python -m venv /tmp/viz && /tmp/viz/bin/pip
install viztracer psutil``; without one (and none importable here) the JSON quotes the 2.9x the
issue measured on this pattern (issue 13) instead (``viztracer_quoted``).

    python bench/tracer_overhead.py [--runs N] [--quick] [--viztracer PYTHON]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from _common import BENCH_DIR, EXPECTED_STEPS, step_heavy

from cpviz.agent.tracer import Tracer
from cpviz.engine.events import Event, TaskSpawn, TaskStep

TARGET = 1.2
#: VizTracer's ratio on this pattern as issue 13 measured it, quoted when it cannot be run here.
VIZTRACER_QUOTED = 2.9
#: Pairs VizTracer gets (each traced run takes about a second).
VIZTRACER_PAIRS = 5

#: Run by the interpreter that has VizTracer: alternating pairs, untraced and under
#: ``VizTracer(log_async=True)``, timed as ``run_once`` times; one JSON line of ratios.
_VIZTRACER_PAIRS = r"""
import asyncio, gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from _common import step_heavy
import viztracer

def once(traced):
    loop = asyncio.new_event_loop()
    tracer = viztracer.VizTracer(log_async=True, verbose=0) if traced else None
    try:
        gc.collect()
        if tracer is not None:
            tracer.start()
        cpu0 = time.thread_time()
        loop.run_until_complete(step_heavy())
        cpu1 = time.thread_time()
        if tracer is not None:
            tracer.stop()
            tracer.clear()
    finally:
        loop.close()
    return cpu1 - cpu0

once(False)
once(True)
ratios = []
for i in range(int(sys.argv[2])):
    if i % 2 == 0:
        t, u = once(True), once(False)
    else:
        u, t = once(False), once(True)
    ratios.append(t / u)
print(json.dumps({"version": viztracer.__version__, "ratios": ratios}))
"""


@dataclass
class Sample:
    cpu_s: float
    wall_s: float
    steps: int = 0
    spawns: int = 0
    dropped: int = 0


def run_once(traced: bool, debug: bool = False) -> Sample:
    """One fresh loop running the pattern; only ``run_until_complete`` is timed."""
    loop = asyncio.new_event_loop()
    tracer = Tracer()
    try:
        if debug:
            loop.set_debug(True)
            loop.slow_callback_duration = 1e9  # no "slow callback" warnings on stderr
        if traced:
            tracer.attach(loop)
        gc.collect()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        loop.run_until_complete(step_heavy())
        cpu1, wall1 = time.thread_time(), time.perf_counter()
    finally:
        tracer.detach()
        loop.close()
    sample = Sample(cpu1 - cpu0, wall1 - wall0)
    if traced:
        events: list[Event] = []
        sample.dropped = tracer.drain(events)
        sample.steps = sum(1 for ev in events if type(ev) is TaskStep)
        sample.spawns = sum(1 for ev in events if type(ev) is TaskSpawn)
    return sample


def viztracer_pairs(python: str | None) -> dict[str, object]:
    """VizTracer's figures on this pattern, or the issue's quote when no interpreter has it."""
    if python is None and importlib.util.find_spec("viztracer") is not None:
        python = sys.executable
    if python is None:
        return {"viztracer_quoted": VIZTRACER_QUOTED,
                "viztracer_source": "issue 13, measured on this pattern"}
    done = subprocess.run(
        [python, "-c", _VIZTRACER_PAIRS, BENCH_DIR, str(VIZTRACER_PAIRS)],
        stdout=subprocess.PIPE, text=True, timeout=300, check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    ratios = found["ratios"]
    print(f"reference: VizTracer {found['version']} log_async, pairs: "
          + ", ".join(f"{r:.2f}x" for r in ratios))
    return {
        "viztracer_ratio": round(statistics.median(ratios), 2),
        "viztracer_spread": [round(min(ratios), 2), round(max(ratios), 2)],
        "viztracer_version": found["version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="traced/untraced pairs (min 5)")
    parser.add_argument("--quick", action="store_true",
                        help="5 pairs, no debug-mode or VizTracer reference")
    parser.add_argument("--viztracer", metavar="PYTHON",
                        help="an interpreter with viztracer (and psutil) to time it with")
    args = parser.parse_args()
    pairs = 5 if args.quick else max(5, args.runs)

    run_once(False)  # warm-up: imports, allocator, caches
    run_once(True)

    cpu_ratios: list[float] = []
    wall_ratios: list[float] = []
    plain: list[Sample] = []
    traced: list[Sample] = []
    for i in range(pairs):
        if i % 2 == 0:
            t, u = run_once(True), run_once(False)
        else:
            u, t = run_once(False), run_once(True)
        if t.steps < EXPECTED_STEPS or t.dropped:
            sys.exit(
                f"FAIL: the tracer recorded {t.steps} steps ({t.dropped} dropped); "
                f"expected at least {EXPECTED_STEPS} and none dropped"
            )
        plain.append(u)
        traced.append(t)
        cpu_ratios.append(t.cpu_s / u.cpu_s)
        wall_ratios.append(t.wall_s / u.wall_s)
        print(
            f"pair {i + 1}/{pairs}: untraced {u.cpu_s * 1000:.0f} ms cpu, "
            f"traced {t.cpu_s * 1000:.0f} ms cpu ({t.steps} steps) -> {cpu_ratios[-1]:.3f}x "
            f"(wall {wall_ratios[-1]:.3f}x)"
        )

    untraced_cpu = statistics.median(s.cpu_s for s in plain)
    result: dict[str, object] = {
        "metric": "tracer_overhead",
        "value": round(statistics.median(cpu_ratios), 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "spread": [round(min(cpu_ratios), 3), round(max(cpu_ratios), 3)],
        "clock": "thread_time",
        "wall_ratio": round(statistics.median(wall_ratios), 3),
        "runs": pairs,
        "untraced_cpu_ms": round(untraced_cpu * 1000, 1),
        "traced_cpu_ms": round(statistics.median(s.cpu_s for s in traced) * 1000, 1),
        "steps_recorded": traced[-1].steps,
        "python": platform.python_version(),
    }
    if not args.quick:
        debug = run_once(False, debug=True)
        result["debug_mode_ratio"] = round(debug.cpu_s / untraced_cpu, 2)
        print(f"reference: asyncio debug mode {debug.cpu_s * 1000:.0f} ms cpu")
        result.update(viztracer_pairs(args.viztracer))
    print(
        f"tracer overhead: {result['value']}x cpu, {result['wall_ratio']}x wall "
        f"(target <= {TARGET}x)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
