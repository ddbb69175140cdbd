"""Fan-out fidelity: does a concurrent I/O fan-out still take about one latency under cpviz?

1000 simulated calls of 200 ms each (the ``io`` workload, mode ``concurrent``) should finish in
about 200 ms when they truly overlap. We run them through a real Lab with every probe on (tracer,
watchdog, sampler) while a consumer thread drains the stream into a Model at 25 Hz, as the UI
would. The figure is the run's wall time (the lab's own RunResult) / 0.2 s, median of several runs.

Baseline in the same run, alternating with the lab runs: the same 1000 x ``anyio.sleep(0.2)``
task-group fan-out on a plain ``anyio.run``, no cpviz at all (``untraced_ratio``); the gap between
the two is what cpviz adds.

    python bench/fanout_fidelity.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time

import anyio
from _common import leftovers

from cpviz.agent.lab import Lab
from cpviz.engine.model import Model

CALLS = 1000
LATENCY_S = 0.2
TARGET = 1.5
#: The UI's default frame rate: how often it drains the stream.
FPS = 25.0


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


class Consumer:
    """Drains the lab's stream into a Model at the UI's frame rate, on its own thread."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.model = Model(cores=lab.cores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-consumer")

    def _run(self) -> None:
        while not self._stop.wait(1 / FPS):
            self.model.apply(self.lab.stream.drain())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.model.apply(self.lab.stream.drain())


def main() -> None:
    parser = argparse.ArgumentParser(description="I/O fan-out fidelity under cpviz")
    parser.add_argument("--runs", type=int, default=9, help="runs of each kind (min 5)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each kind")
    args = parser.parse_args()
    runs = 5 if args.quick else max(5, args.runs)

    lab_walls: list[float] = []
    plain_walls: list[float] = []
    lag_s: list[float] = []
    lab = Lab().start()
    consumer = Consumer(lab)
    consumer.start()
    try:
        plain_wall()  # warm-up of both paths
        lab.wait(lab.launch("io", "concurrent", {"n": CALLS, "latency_ms": LATENCY_S * 1000}))
        for i in range(runs):
            order = ("lab", "plain") if i % 2 == 0 else ("plain", "lab")
            for kind in order:
                if kind == "plain":
                    plain_walls.append(plain_wall())
                    continue
                run_id = lab.launch(
                    "io", "concurrent", {"n": CALLS, "latency_ms": LATENCY_S * 1000}
                )
                result = lab.wait(run_id, timeout=60)
                if result is None or result.outcome != "completed":
                    sys.exit(f"FAIL: io run did not complete: {result}")
                lab_walls.append(result.wall_s)
                lag_s.append(dict(result.extra).get("max_loop_lag_s", 0.0))
            print(
                f"run {i + 1}/{runs}: lab {lab_walls[-1] / LATENCY_S:.3f}x, "
                f"plain {plain_walls[-1] / LATENCY_S:.3f}x, "
                f"max loop lag {lag_s[-1] * 1000:.0f} ms"
            )
    finally:
        consumer.stop()
        lab.close()

    left = leftovers()
    if left:
        print(f"WARNING: still alive after close: {', '.join(left)}")
    traced = list(consumer.model.results)[-runs:]
    short = [r for r in traced if r.tasks < CALLS]
    if len(traced) < runs or short:
        sys.exit(
            f"FAIL: the tracer did not see every call: {[(r.tasks, r.steps) for r in traced]}"
        )

    value = statistics.median(lab_walls) / LATENCY_S
    plain = statistics.median(plain_walls) / LATENCY_S
    print(
        f"fan-out fidelity: {value:.3f}x the latency under cpviz, {plain:.3f}x without "
        f"(target <= {TARGET}x)"
    )
    print(
        json.dumps(
            {
                "metric": "fanout_fidelity",
                "value": round(value, 3),
                "unit": "x",
                "target": TARGET,
                "better": "lower",
                "untraced_ratio": round(plain, 3),
                "runs": runs,
                "max_loop_lag_ms": round(statistics.median(lag_s) * 1000, 1),
                "traced_tasks": traced[-1].tasks,
                "traced_steps": traced[-1].steps,
                "dropped_events": consumer.model.dropped,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
