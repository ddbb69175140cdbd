"""Channel throughput: does every task step cross to the viewer, and what does streaming cost?

The tracer benchmark's worst case (10,000 tasks x 10 ``asyncio.sleep(0)``, about 110,000 steps
in a fraction of a second; see ``tracer_overhead.py``) runs as a workload in the observed process
(``python -m cpviz.agent`` through :class:`~cpviz.engine.observed.ObservedLab`), with the real
Streamer sending the tracer's ring down the channel every 20 ms while this process, the viewer,
drains the stream into a Model at the screen's 25 Hz. Two questions:

(a) Does every step reach the viewer's Model? Every batch drained is counted on a stream tap:
    TaskStep events, and the drops that StreamGap events report. None may be dropped, and the
    viewer must see as many steps as the tracer alone records for the same workload.
(b) What does streaming cost the watched program? The same workload runs on an in-process Lab
    (the same tracer, watchdog and no-progress detector) that nothing drains until the run has
    ended. Both arms time the workload where it runs (see ``_catalogue.py``), in alternating
    pairs; each figure is the median of the per-pair ratios, streamed over alone:

    * the value: the observed process's CPU while the loop ran the workload. The streamer works
      on its own thread, so the loop thread's CPU hardly moves (``loop_cpu_ratio``, about 1.0);
      but while the streamer holds the GIL the loop cannot run, and process CPU counts that work;
    * ``wall_ratio``: the loop's elapsed time. It includes the same GIL waits, and on a busy
      two-core machine also whoever else wanted a core (this process decoding, for one), so it
      reads higher and scatters more.

The viewer's core sampler is off: it is not part of the channel, and in the in-process arm it
would share the lab's GIL and flatter the ratio.

    python bench/channel_throughput.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from _catalogue import CATALOGUE, STEPS_KEY, lab_catalogue
from _common import (
    AWAITS,
    EXPECTED_STEPS,
    TASKS,
    end_on_sigterm,
    leftovers,
    log,
    observed_path,
    spread,
)

from cpviz.agent.lab import Lab
from cpviz.engine.events import Event, StreamGap, TaskSpawn, TaskStep
from cpviz.engine.headless import result_of, run_to_end
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab

TARGET = 1.1
#: The screen's frame rate: how often the viewer drains.
DRAIN_HZ = 25.0
RUN_TIMEOUT_S = 60.0


@dataclass
class Sample:
    """One run of the workload: its timing where it ran, and what the viewer received."""

    loop_wall_s: float
    loop_cpu_s: float
    process_cpu_s: float
    #: TaskSteps in every batch drained while the run lasted.
    steps_seen: int
    #: Records the StreamGap events said were dropped.
    dropped: int
    #: Steps of the run's own tasks, and its tasks seen whole (all 11 steps and the last).
    run_steps: int
    whole_tasks: int
    #: The run's step count as the Model reports it (``cpviz run --json``'s "steps").
    model_steps: int


class Counter:
    """A stream tap: TaskSteps and reported drops in every batch the consumer drains.

    It also follows each task of the run to its last step, on its own books: the Model keeps
    only the newest 5000 tasks on screen, so its per-run step count cannot say whether 10,000
    tasks' steps all arrived.
    """

    def __init__(self) -> None:
        self.steps = 0
        self.dropped = 0
        self._run_of: dict[int, int] = {}
        self._steps_of: dict[int, int] = {}
        self._finished: set[int] = set()

    def __call__(self, batch: list[Event]) -> None:
        run_of, steps_of, finished = self._run_of, self._steps_of, self._finished
        for ev in batch:
            if type(ev) is TaskStep:
                self.steps += 1
                tid = ev.task_id
                steps_of[tid] = steps_of.get(tid, 0) + 1
                if ev.final:
                    finished.add(tid)
            elif type(ev) is TaskSpawn:
                run_of[ev.task_id] = ev.run_id
            elif type(ev) is StreamGap:
                self.dropped += ev.dropped

    def whole_tasks(self, run_id: int) -> int:
        """Tasks of ``run_id`` seen from spawn to last step with every step in between."""
        return sum(
            1 for tid, run in self._run_of.items()
            if run == run_id and tid in self._finished and self._steps_of.get(tid) == AWAITS + 1
        )

    def run_steps(self, run_id: int) -> int:
        """Steps of the tasks spawned for ``run_id``."""
        return sum(self._steps_of.get(t, 0) for t, run in self._run_of.items() if run == run_id)


def _sample(result: dict[str, Any], counter: Counter, run_id: int) -> Sample:
    if result.get("outcome") != "completed":
        sys.exit(f"FAIL: the steps run did not complete: {result.get('outcome')}")
    return Sample(
        float(result["bench_loop_wall_s"]),
        float(result["bench_loop_cpu_s"]),
        float(result["bench_process_cpu_s"]),
        counter.steps,
        counter.dropped,
        counter.run_steps(run_id),
        counter.whole_tasks(run_id),
        int(result["steps"]),
    )


def streamed(lab: ObservedLab) -> Sample:
    """The workload in the observed process, drained at the screen's rate as it runs."""
    counter = Counter()
    model = Model(cores=lab.cores)
    lab.stream.drain()  # whatever the idle probes sent before, so the counts are this run's
    lab.stream.add_tap(counter)
    try:
        gc.collect()
        run_id = lab.launch(STEPS_KEY, None, {})
        result = run_to_end(lab, model, run_id, timeout=RUN_TIMEOUT_S, poll_s=1 / DRAIN_HZ)
    finally:
        lab.stream.remove_tap(counter)
    return _sample(result, counter, run_id)


def alone(lab: Lab) -> Sample:
    """The same workload on an in-process lab; its stream is drained once, after the run."""
    counter = Counter()
    model = Model(cores=lab.cores)
    model.apply(lab.stream.drain())
    lab.stream.add_tap(counter)
    try:
        gc.collect()
        run_id = lab.launch(STEPS_KEY, None, {})
        if lab.wait(run_id, timeout=RUN_TIMEOUT_S) is None:
            lab.stop_run(run_id)
            sys.exit(f"FAIL: the in-process run did not end within {RUN_TIMEOUT_S:g} s")
        model.apply(lab.stream.drain())
    finally:
        lab.stream.remove_tap(counter)
    result = result_of(model, run_id)
    if result is None:
        sys.exit("FAIL: the in-process run's end was not in its stream")
    return _sample(result, counter, run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="streamed/alone pairs (min 5)")
    parser.add_argument("--quick", action="store_true", help="5 pairs")
    args = parser.parse_args()
    pairs = 5 if args.quick else max(5, args.runs)
    end_on_sigterm()
    observed_path()

    began = time.perf_counter()
    streamed_s: list[Sample] = []
    alone_s: list[Sample] = []
    wall_r: list[float] = []
    proc_r: list[float] = []
    loop_r: list[float] = []
    observed = ObservedLab(lab_catalogue(), catalogue=CATALOGUE, sample=False,
                           output=sys.stderr)
    local = Lab(workloads=lab_catalogue())
    pids: list[int] = []
    try:
        observed.start()
        if observed.pid is not None:
            pids.append(observed.pid)
        local.start()
        streamed(observed)  # warm-up of both paths: imports, allocator, caches
        alone(local)
        for i in range(pairs):
            if i % 2 == 0:
                s, a = streamed(observed), alone(local)
            else:
                a, s = alone(local), streamed(observed)
            streamed_s.append(s)
            alone_s.append(a)
            wall_r.append(s.loop_wall_s / a.loop_wall_s)
            proc_r.append(s.process_cpu_s / a.process_cpu_s)
            loop_r.append(s.loop_cpu_s / a.loop_cpu_s)
            log(
                f"pair {i + 1}/{pairs}: process cpu streamed {s.process_cpu_s * 1000:.0f} ms, "
                f"alone {a.process_cpu_s * 1000:.0f} ms -> {proc_r[-1]:.3f}x; wall "
                f"{wall_r[-1]:.3f}x; loop cpu {loop_r[-1]:.3f}x; the viewer got {s.run_steps} "
                f"of the run's steps ({s.dropped} dropped), alone {a.run_steps}"
            )
    finally:
        observed.close()
        local.close()

    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    dropped = sum(s.dropped for s in streamed_s)
    short = [(s.run_steps, s.whole_tasks) for s in streamed_s
             if s.run_steps < EXPECTED_STEPS or s.whole_tasks < TASKS]
    if dropped or short:
        sys.exit(
            f"FAIL: the viewer lost steps: {dropped} dropped; runs short of {EXPECTED_STEPS} "
            f"steps or {TASKS} whole tasks (steps, whole tasks): {short}"
        )

    value = statistics.median(proc_r)
    log(f"process cpu, streamed / alone: {spread(proc_r)}")
    log(f"loop wall, streamed / alone: {spread(wall_r)}")
    log(f"loop thread cpu, streamed / alone: {spread(loop_r)}")
    s, a = streamed_s[-1], alone_s[-1]
    log(
        f"steps: the viewer received {s.run_steps} steps of the run ({s.whole_tasks} of "
        f"{TASKS} tasks whole), the tracer alone {a.run_steps} ({a.whole_tasks}); dropped on "
        f"the way: {dropped}; the Model's own count for the run: streamed "
        f"{spread([x.model_steps for x in streamed_s], '.0f')}, alone {a.model_steps}"
    )
    log(
        f"channel throughput: streaming costs {value:.3f}x the tracer alone in CPU, "
        f"{statistics.median(wall_r):.3f}x in wall time (target <= {TARGET}x); "
        f"took {time.perf_counter() - began:.0f} s"
    )
    median_wall = statistics.median(x.loop_wall_s for x in streamed_s)
    print(json.dumps({
        "metric": "channel_streaming_overhead",
        "value": round(value, 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "clock": "process_time",
        "wall_ratio": round(statistics.median(wall_r), 3),
        "loop_cpu_ratio": round(statistics.median(loop_r), 3),
        "runs": pairs,
        "streamed_cpu_ms": round(statistics.median(x.process_cpu_s for x in streamed_s) * 1000, 1),
        "alone_cpu_ms": round(statistics.median(x.process_cpu_s for x in alone_s) * 1000, 1),
        "streamed_wall_ms": round(median_wall * 1000, 1),
        "alone_wall_ms": round(statistics.median(x.loop_wall_s for x in alone_s) * 1000, 1),
        "steps_per_s_streamed": round(s.run_steps / median_wall),
        "run_steps_streamed": s.run_steps,
        "run_steps_alone": a.run_steps,
        "whole_tasks_streamed": s.whole_tasks,
        "model_run_steps_streamed": statistics.median(x.model_steps for x in streamed_s),
        "dropped_streamed": dropped,
        "dropped_alone": sum(a.dropped for a in alone_s),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
