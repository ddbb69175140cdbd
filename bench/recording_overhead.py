"""Recording overhead: what writing a recording costs the program being recorded.

Since the observer split, a recording is made in the viewer: ``cpviz --record`` taps the
viewer's event stream (:func:`cpviz.record_cli.start_recording`), and a writer process of the
viewer's formats and compresses the file. The program being recorded runs in the observed
process and does the same work either way. This bench measures that through the real split: the
tracer benchmark's worst case (10,000 tasks x 10 ``asyncio.sleep(0)``; ``tracer_overhead.py``)
runs as a workload in the observed process (``python -m cpviz.agent`` through
:class:`~cpviz.engine.observed.ObservedLab`, every probe on, the streamer sending every 20 ms),
while this process, the viewer, drains the stream into a Model at the screen's 25 Hz; in the
recorded arm a :class:`~cpviz.engine.recording.Recorder` taps the stream and writes a
``.jsonl.gz`` file, finished before the sample ends.

Alternating pairs, recorded and not; each figure is the median of the per-pair ratios,
recorded over not recorded:

* the value: the observed process's CPU while its loop ran the workload (the workload times
  itself where it runs, see ``_catalogue.py``): what recording costs the watched program;
* ``wall_ratio``: the loop's elapsed time, which on a busy two-core machine also counts the
  viewer's and the writer's work competing for the cores;
* ``viewer_cpu_ratio``: this process's CPU over the sample (decoding, the Model, the recorder's
  packing thread): where recording's cost went; ``writer_cpu_ratio``: the writer process's CPU,
  against the observed process's CPU in the plain run.

The core sampler is off, as in ``channel_throughput.py``: the same in both arms, it only adds
noise. It fails unless every step of the run reached the file and nothing was dropped.

    python bench/recording_overhead.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from _catalogue import CATALOGUE, STEPS_KEY, lab_catalogue
from _common import EXPECTED_STEPS, end_on_sigterm, leftovers, log, observed_path, spread

from cpviz.engine.events import Event, StreamGap, TaskStep
from cpviz.engine.headless import run_to_end
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from cpviz.engine.recording import Header, Recorder, load

#: The screen's frame rate: how often the viewer drains.
DRAIN_HZ = 25.0
TARGET = 1.05
RUN_TIMEOUT_S = 60.0


@dataclass
class Sample:
    """One run of the workload: its timing where it ran, and the viewer's side of it."""

    loop_wall_s: float
    loop_cpu_s: float
    process_cpu_s: float
    viewer_cpu_s: float
    writer_cpu_s: float = 0.0
    steps: int = 0
    dropped: int = 0
    events: int = 0
    file_bytes: int = 0


class Counter:
    """A stream tap: the TaskSteps and the drops StreamGap events report, in every batch."""

    def __init__(self) -> None:
        self.steps = 0
        self.dropped = 0

    def __call__(self, batch: list[Event]) -> None:
        for ev in batch:
            if type(ev) is TaskStep:
                self.steps += 1
            elif type(ev) is StreamGap:
                self.dropped += ev.dropped


def _children_cpu() -> float:
    """CPU seconds of reaped child processes (the recorder's writer, once closed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(lab: ObservedLab, record: bool, path: str) -> Sample:
    """The workload in the observed process, drained as the screen drains, maybe recorded.

    The recorder is made and tapped before the run and closed after it, as ``--record`` does
    around a session: the file is whole when the sample ends.
    """
    model = Model(cores=lab.cores)
    model.apply(lab.stream.drain())  # what the idle probes sent before: not this run's
    counter = Counter()
    recorder: Recorder | None = None
    if record:
        header = Header.now(lab.cores, lab.clock.now(), lab.workloads(), "bench")
        recorder = Recorder(path, header)
        lab.stream.add_tap(recorder.tap)
    lab.stream.add_tap(counter)
    children0 = _children_cpu()
    viewer0 = time.process_time()
    try:
        gc.collect()
        run_id = lab.launch(STEPS_KEY, None, {})
        result: dict[str, Any] = run_to_end(
            lab, model, run_id, timeout=RUN_TIMEOUT_S, poll_s=1 / DRAIN_HZ
        )
        model.apply(lab.stream.drain())
    finally:
        lab.stream.remove_tap(counter)
        status = None
        if recorder is not None:
            lab.stream.remove_tap(recorder.tap)
            status = recorder.close()
    viewer1 = time.process_time()
    if result.get("outcome") != "completed":
        sys.exit(f"FAIL: the steps run did not complete: {result.get('outcome')}")
    sample = Sample(
        float(result["bench_loop_wall_s"]),
        float(result["bench_loop_cpu_s"]),
        float(result["bench_process_cpu_s"]),
        viewer1 - viewer0,
        steps=counter.steps,
        dropped=counter.dropped,
    )
    if status is not None:
        if status.message:
            sys.exit(f"FAIL: {status.message}")
        sample.writer_cpu_s = _children_cpu() - children0
        sample.events = status.events
        sample.file_bytes = os.path.getsize(path)
    if sample.steps < EXPECTED_STEPS or sample.dropped:
        sys.exit(
            f"FAIL: the viewer got {sample.steps} steps ({sample.dropped} dropped); expected "
            f"at least {EXPECTED_STEPS} and none dropped"
        )
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="recorded/plain pairs (min 5)")
    parser.add_argument("--quick", action="store_true", help="5 pairs")
    args = parser.parse_args()
    pairs = 5 if args.quick else max(5, args.runs)
    end_on_sigterm()
    observed_path()

    began = time.perf_counter()
    proc: list[float] = []
    wall: list[float] = []
    loop_cpu: list[float] = []
    viewer: list[float] = []
    writer: list[float] = []
    plain: list[Sample] = []
    recorded: list[Sample] = []
    lab = ObservedLab(lab_catalogue(), catalogue=CATALOGUE, sample=False, output=sys.stderr)
    pids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="cpviz-bench-") as folder:
        path = os.path.join(folder, "bench.jsonl.gz")
        try:
            lab.start()
            if lab.pid is not None:
                pids.append(lab.pid)
            run_once(lab, False, path)  # warm-up of both arms: imports, allocator, caches
            run_once(lab, True, path)
            for i in range(pairs):
                if i % 2 == 0:
                    r, u = run_once(lab, True, path), run_once(lab, False, path)
                else:
                    u, r = run_once(lab, False, path), run_once(lab, True, path)
                plain.append(u)
                recorded.append(r)
                proc.append(r.process_cpu_s / u.process_cpu_s)
                wall.append(r.loop_wall_s / u.loop_wall_s)
                loop_cpu.append(r.loop_cpu_s / u.loop_cpu_s)
                viewer.append(r.viewer_cpu_s / u.viewer_cpu_s)
                writer.append(r.writer_cpu_s / u.process_cpu_s)
                log(
                    f"pair {i + 1}/{pairs}: observed process cpu plain "
                    f"{u.process_cpu_s * 1000:.0f} ms, recorded {r.process_cpu_s * 1000:.0f} ms "
                    f"-> {proc[-1]:.3f}x; loop wall {wall[-1]:.3f}x; viewer cpu "
                    f"{u.viewer_cpu_s * 1000:.0f} -> {r.viewer_cpu_s * 1000:.0f} ms; writer "
                    f"{r.writer_cpu_s * 1000:.0f} ms ({r.events} events, "
                    f"{r.file_bytes / 1e6:.1f} MB)"
                )
        finally:
            lab.close()
        # The last file must hold what the recorder said it wrote: every event of the run.
        check = load(path)
        if len(check.events) != recorded[-1].events:
            sys.exit(f"FAIL: the file holds {len(check.events)} events, expected "
                     f"{recorded[-1].events}")
        steps_in_file = sum(1 for ev in check.events if type(ev) is TaskStep)
    if steps_in_file < EXPECTED_STEPS:
        sys.exit(f"FAIL: the file holds {steps_in_file} steps, expected {EXPECTED_STEPS}")
    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")

    value = statistics.median(proc)
    log(f"observed process cpu, recorded / plain: {spread(proc)}")
    log(f"loop wall, recorded / plain: {spread(wall)}")
    log(f"viewer cpu, recorded / plain: {spread(viewer)}")
    log(f"writer process cpu / observed process cpu: {spread(writer)}")
    log(
        f"recording overhead: {value:.3f}x the observed process's cpu (target <= {TARGET}x); "
        f"the viewer used {statistics.median(viewer):.2f}x its cpu and the writer "
        f"{statistics.median(writer):.2f}x the program's on the other core; "
        f"took {time.perf_counter() - began:.0f} s"
    )
    print(json.dumps({
        "metric": "recording_overhead",
        "value": round(value, 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "spread": [round(min(proc), 3), round(max(proc), 3)],
        "clock": "process_time of the observed process",
        "wall_ratio": round(statistics.median(wall), 3),
        "loop_cpu_ratio": round(statistics.median(loop_cpu), 3),
        "viewer_cpu_ratio": round(statistics.median(viewer), 3),
        "writer_cpu_ratio": round(statistics.median(writer), 3),
        "runs": pairs,
        "plain_cpu_ms": round(statistics.median(s.process_cpu_s for s in plain) * 1000, 1),
        "recorded_cpu_ms": round(statistics.median(s.process_cpu_s for s in recorded) * 1000, 1),
        "events_recorded": recorded[-1].events,
        "steps_in_file": steps_in_file,
        "file_mb": round(recorded[-1].file_bytes / 1e6, 2),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
