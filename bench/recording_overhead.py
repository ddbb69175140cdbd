"""Recording overhead: how much slower the tracer benchmark runs while a recording is written.

The program is the tracer benchmark's worst case (10,000 tasks that each yield 10 times with
``asyncio.sleep(0)``; see ``tracer_overhead.py``), traced in both arms and drained the way the
app drains: a consumer thread pulls the stream 25 times a second and folds it into a Model. The
recorded arm also taps the stream into a :class:`~cpviz.engine.recording.Recorder` writing a
temporary ``.jsonl.gz`` file; its writer does its work while the program runs, and the file is
finished before the sample ends.

The value is the median ratio, recorded over not recorded (alternating pairs), of the CPU time
of the whole recorded process: the loop, the consumer and the recorder's packing thread. Not the
loop thread's alone, as in the tracer benchmark: the recorder works on other threads, so the
loop's own CPU hardly changes, but every microsecond those threads hold the GIL is one the loop
cannot run, and process CPU counts it. The JSON itself is formatted and compressed by the
recorder's writer *process* on another core; its CPU is reported beside (``writer_cpu_ratio``,
against the plain run's process CPU), as is the wall-clock ratio (``wall_ratio``), which on a
busy two-core machine mostly measures who else wanted the cores.

    python bench/recording_overhead.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from _common import EXPECTED_STEPS, leftovers, step_heavy

from cpviz.agent.tracer import Tracer
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.model import Model
from cpviz.engine.recording import Header, Recorder, load
from cpviz.engine.stream import EventStream

#: The app's default frame rate: how often it drains the stream.
DRAIN_HZ = 25.0
TARGET = 1.1



@dataclass
class Sample:
    wall_s: float
    loop_cpu_s: float
    process_cpu_s: float
    writer_cpu_s: float = 0.0
    events: int = 0
    file_bytes: int = 0


def _children_cpu() -> float:
    """CPU seconds of reaped child processes (the recorder's writer, once closed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(record: bool, folder: str) -> Sample:
    """One fresh traced loop running the pattern while a consumer drains (and maybe records)."""
    clock = MonotonicClock()
    stream = EventStream(clock, capacity=1 << 20)
    tracer = Tracer(capacity=1 << 18, origin=clock.origin)
    stream.add_feed(tracer)
    model = Model(cores=os.cpu_count() or 1)
    recorder: Recorder | None = None
    path = os.path.join(folder, "bench.jsonl.gz")
    if record:
        recorder = Recorder(path, Header.now(model.cores, clock.now(), [], "bench"))
        stream.add_tap(recorder.tap)
    stop = threading.Event()

    def consume() -> None:
        while not stop.wait(1.0 / DRAIN_HZ):
            model.apply(stream.drain())
        model.apply(stream.drain())

    consumer = threading.Thread(target=consume, name="bench-drain")
    loop = asyncio.new_event_loop()
    children0 = _children_cpu()
    try:
        tracer.attach(loop)
        gc.collect()
        consumer.start()
        proc0 = time.process_time()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        loop.run_until_complete(step_heavy())
        cpu1, wall1 = time.thread_time(), time.perf_counter()
    finally:
        tracer.detach()
        loop.close()
        stop.set()
        consumer.join()
    # Up to here the consumer has folded everything; the recorder must also have packed it all
    # and the writer finished the file, or part of the cost would fall outside the sample.
    status = recorder.close() if recorder is not None else None
    proc1 = time.process_time()
    sample = Sample(wall1 - wall0, cpu1 - cpu0, proc1 - proc0)
    if status is not None:
        sample.writer_cpu_s = _children_cpu() - children0
        if status.message:
            sys.exit(f"FAIL: {status.message}")
        sample.events = status.events
        sample.file_bytes = os.path.getsize(path)
    if tracer.written < EXPECTED_STEPS or stream.dropped_total or tracer.dropped:
        sys.exit(
            f"FAIL: the tracer wrote {tracer.written} steps ({tracer.dropped} dropped), "
            f"expected {EXPECTED_STEPS} and none dropped"
        )
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="recorded/plain pairs (min 5)")
    parser.add_argument("--quick", action="store_true", help="5 pairs")
    args = parser.parse_args()
    pairs = 5 if args.quick else max(5, args.runs)

    with tempfile.TemporaryDirectory(prefix="cpviz-bench-") as folder:
        run_once(False, folder)  # warm-up: imports, allocator, caches
        run_once(True, folder)
        wall: list[float] = []
        loop_cpu: list[float] = []
        proc_cpu: list[float] = []
        writer_cpu: list[float] = []
        plain: list[Sample] = []
        recorded: list[Sample] = []
        for i in range(pairs):
            if i % 2 == 0:
                r, u = run_once(True, folder), run_once(False, folder)
            else:
                u, r = run_once(False, folder), run_once(True, folder)
            plain.append(u)
            recorded.append(r)
            wall.append(r.wall_s / u.wall_s)
            loop_cpu.append(r.loop_cpu_s / u.loop_cpu_s)
            proc_cpu.append(r.process_cpu_s / u.process_cpu_s)
            writer_cpu.append(r.writer_cpu_s / u.process_cpu_s)
            print(
                f"pair {i + 1}/{pairs}: process cpu plain {u.process_cpu_s * 1000:.0f} ms, "
                f"recorded {r.process_cpu_s * 1000:.0f} ms -> {proc_cpu[-1]:.3f}x; writer "
                f"{r.writer_cpu_s * 1000:.0f} ms cpu; wall {wall[-1]:.3f}x; loop cpu "
                f"{loop_cpu[-1]:.3f}x ({r.events} events, {r.file_bytes / 1e6:.1f} MB)"
            )
        # Check the file really holds the run: every step the consumer saw.
        check = load(os.path.join(folder, "bench.jsonl.gz"))
        if len(check.events) != recorded[-1].events:
            sys.exit(f"FAIL: the file holds {len(check.events)} events, expected "
                     f"{recorded[-1].events}")

    result: dict[str, object] = {
        "metric": "recording_overhead",
        "value": round(statistics.median(proc_cpu), 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "clock": "process_time",
        "writer_cpu_ratio": round(statistics.median(writer_cpu), 3),
        "wall_ratio": round(statistics.median(wall), 3),
        "loop_cpu_ratio": round(statistics.median(loop_cpu), 3),
        "runs": pairs,
        "plain_cpu_ms": round(statistics.median(s.process_cpu_s for s in plain) * 1000, 1),
        "recorded_cpu_ms": round(statistics.median(s.process_cpu_s for s in recorded) * 1000, 1),
        "events_recorded": recorded[-1].events,
        "file_mb": round(recorded[-1].file_bytes / 1e6, 2),
        "python": platform.python_version(),
    }
    left = leftovers()
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    print(
        f"recording overhead: {result['value']}x process cpu (target <= {TARGET}x); the "
        f"writer process used {result['writer_cpu_ratio']}x as much again on another core; "
        f"wall {result['wall_ratio']}x"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
