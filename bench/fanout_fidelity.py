"""Fan-out fidelity: does a concurrent I/O fan-out still take about one latency under cpviz?

1000 simulated calls of 200 ms each (the ``io`` workload, mode ``concurrent``) should finish in
about 200 ms when they truly overlap. They run as cpviz runs them: in the observed process
(``python -m cpviz.agent`` through :class:`~cpviz.engine.observed.ObservedLab`) with every probe
on (tracer, watchdog, no-progress detector, the streamer sending it all down the channel, and the
core sampler reading it from here), while this process, the viewer, drains the stream into a
Model at the screen's 25 Hz (``run_to_end``). The figure is the run's wall time as the lab
measured it / 0.2 s, median of several runs.

Baseline in the same run, alternating with the lab runs: the same 1000 x ``anyio.sleep(0.2)``
task-group fan-out on a plain ``anyio.run`` in this process, no cpviz at all
(``untraced_ratio``); the gap between the two is what cpviz adds.

    python bench/fanout_fidelity.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any

import anyio
from _common import end_on_sigterm, leftovers, log, spread

from cpviz.engine.headless import run_to_end
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from cpviz.workloads.registry import catalogue

CALLS = 1000
LATENCY_S = 0.2
TARGET = 1.3
#: The UI's default frame rate: how often it drains the stream.
FPS = 25.0
SETTINGS = {"n": CALLS, "latency_ms": LATENCY_S * 1000}


async def _plain_fan_out() -> float:
    async def call() -> None:
        await anyio.sleep(LATENCY_S)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(CALLS):
            tg.start_soon(call, name=f"call {i}")
    return time.perf_counter() - t0


def plain_wall() -> float:
    """The fan-out on a fresh asyncio loop with nothing attached."""
    return anyio.run(_plain_fan_out, backend="asyncio")


def observed_run(lab: ObservedLab, model: Model) -> dict[str, Any]:
    """One fan-out through the channel; its result as ``cpviz run --json`` prints it."""
    run_id = lab.launch("io", "concurrent", SETTINGS)
    result = run_to_end(lab, model, run_id, timeout=60, poll_s=1 / FPS)
    if result.get("outcome") != "completed":
        sys.exit(f"FAIL: io run did not complete: {result.get('outcome')}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="runs of each kind (min 5)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each kind")
    args = parser.parse_args()
    runs = 5 if args.quick else max(5, args.runs)
    end_on_sigterm()

    began = time.perf_counter()
    lab_walls: list[float] = []
    plain_walls: list[float] = []
    lag_s: list[float] = []
    results: list[dict[str, Any]] = []
    lab = ObservedLab(catalogue(), output=sys.stderr)
    model = Model(cores=lab.cores)
    pids: list[int] = []
    try:
        lab.start()
        if lab.pid is not None:
            pids.append(lab.pid)
        plain_wall()  # warm-up of both paths
        observed_run(lab, model)
        for i in range(runs):
            order = ("lab", "plain") if i % 2 == 0 else ("plain", "lab")
            for kind in order:
                if kind == "plain":
                    plain_walls.append(plain_wall())
                    continue
                result = observed_run(lab, model)
                results.append(result)
                lab_walls.append(float(result["wall_s"]))
                lag_s.append(float(result.get("max_loop_lag_s", 0.0)))
            log(
                f"run {i + 1}/{runs}: observed {lab_walls[-1] / LATENCY_S:.3f}x, "
                f"plain {plain_walls[-1] / LATENCY_S:.3f}x, "
                f"max loop lag {lag_s[-1] * 1000:.0f} ms"
            )
    finally:
        lab.close()

    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    short = [(r["tasks"], r["steps"]) for r in results if int(r["tasks"]) < CALLS]
    if short or model.dropped:
        sys.exit(
            f"FAIL: the viewer did not see every call: (tasks, steps) {short}, "
            f"{model.dropped} events dropped"
        )

    ratios = [w / LATENCY_S for w in lab_walls]
    plain = [w / LATENCY_S for w in plain_walls]
    value = statistics.median(ratios)
    log(f"observed: {spread(ratios)} x the latency")
    log(f"plain anyio: {spread(plain)} x the latency")
    log(
        f"fan-out fidelity: {value:.3f}x the latency under cpviz, "
        f"{statistics.median(plain):.3f}x without (target <= {TARGET}x); "
        f"took {time.perf_counter() - began:.0f} s"
    )
    print(json.dumps({
        "metric": "fanout_fidelity",
        "value": round(value, 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "untraced_ratio": round(statistics.median(plain), 3),
        "vs_untraced": round(value / statistics.median(plain), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
        "runs": runs,
        "max_loop_lag_ms": round(statistics.median(lag_s) * 1000, 1),
        "traced_tasks": results[-1]["tasks"],
        "traced_steps": results[-1]["steps"],
        "dropped_events": model.dropped,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
