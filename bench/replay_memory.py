"""Replay memory: what checking and drawing a recording of a million tasks costs in memory.

A recording's size must not decide whether cpviz can open it: the reader streams the file, and
a replay holds what the Model keeps for the screen, never the file's events. Before that,
10^6 tasks took ``cpviz replay --check`` to 475 MB and ``cpviz screenshot`` to 1.25 GB.

The script writes a recording of ``--tasks`` tasks (default 10^6), the way a step-heavy run
records them: one run, and for each task its spawn and its one final step, 0.1 ms apart, with
core samples at 10 Hz and loop lag beside; gzip-compressed, as ``--record x.jsonl.gz`` writes
it. Then it runs, as a person would, ``cpviz replay FILE --check`` and ``cpviz screenshot FILE
OUT.svg --at end`` (the end: the whole file read and folded), each as its own process, and
reads that process's peak resident memory from the kernel (``wait4``'s ``ru_maxrss``).
Baseline in the same run: the same two commands on a recording of 1,000 tasks, the fixed cost
of the interpreter and its imports; ``growth_mb`` is the difference.

The value is the larger of the two medians (over ``--runs``, default 3) in MB. Target: 300 MB.

    python bench/replay_memory.py [--runs N] [--tasks N] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import end_on_sigterm, leftovers, log, spread

from cpviz.engine.events import (
    CoreSample,
    Event,
    LoopLag,
    RunEnd,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.recording import Header, encode_lines

TARGET_MB = 300.0
SMALL_TASKS = 1_000
#: Tasks apart on the recording's clock: 10^6 tasks make a 100 s recording.
SPACING_S = 1e-4


def write_recording(path: Path, tasks: int) -> None:
    """A gzip recording of one run of ``tasks`` tasks, each a spawn and one final step."""
    header = Header.now(2, 0.0, (), f"bench/replay_memory.py ({tasks} tasks)")
    start = 0.5
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write(json.dumps(header.encode()) + "\n")
        batch: list[Event] = [RunStart(start, 1, "io", "concurrent", (("n", tasks),), tasks)]
        next_sample = start
        for i in range(tasks):
            t = start + i * SPACING_S
            task_id = 140_000_000_000 + i
            batch.append(TaskSpawn(t, task_id, f"call {i}", 1, 139_999_999_999))
            batch.append(TaskStep(task_id, t, t + 2e-6, t + 3e-5, True))
            if t >= next_sample:
                batch.append(CoreSample(t, (55.0, 12.5)))
                batch.append(LoopLag(t, 0.002))
                next_sample += 0.1
            if len(batch) >= 50_000:
                out.write(encode_lines(batch))
                batch = []
        end = start + tasks * SPACING_S
        result = RunResult("io", "concurrent", (("n", tasks),), end - start, 1.0, 0.5, None,
                           None, ())
        batch.append(RunEnd(end, 1, result))
        out.write(encode_lines(batch))


#: Runs cpviz as ``python -m cpviz`` does, and writes its own peak resident memory (the
#: kernel's high-water mark for this very program, VmHWM) to a descriptor as it exits. Read
#: from inside because wait4's ru_maxrss also counts what the forked child inherited from this
#: script before it exec'd.
_WRAPPER = """
import atexit, os, runpy, sys
fd = int(sys.argv.pop(1))
def report():
    with open('/proc/self/status') as f:
        kb = next(line.split()[1] for line in f if line.startswith('VmHWM:'))
    os.write(fd, kb.encode())
atexit.register(report)
sys.argv[0] = 'cpviz'
runpy.run_module('cpviz', run_name='__main__')
"""


def peak_mb(argv: list[str]) -> tuple[float, float]:
    """Run ``cpviz ARGV`` to its end; its peak resident memory in MB and its wall seconds."""
    began = time.perf_counter()
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, str(write), *argv], pass_fds=(write,),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as answer:
        kb = answer.read()
    _, err = proc.communicate()
    if proc.returncode != 0 or not kb:
        sys.exit(f"FAIL: cpviz {' '.join(argv)} exited {proc.returncode}: "
                 f"{err.decode(errors='replace').strip()}")
    return int(kb) / 1024, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (min 1)")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the recording")
    parser.add_argument("--quick", action="store_true", help="one run of each command")
    args = parser.parse_args()
    runs = 1 if args.quick else max(1, args.runs)
    end_on_sigterm()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cpviz-replay-memory-") as folder:
        big, small = Path(folder) / "big.jsonl.gz", Path(folder) / "small.jsonl.gz"
        write_recording(big, args.tasks)
        write_recording(small, SMALL_TASKS)
        log(f"recording of {args.tasks:,} tasks: {big.stat().st_size / 1e6:.1f} MB gzip, "
            f"written in {time.perf_counter() - began:.0f} s")
        figures: dict[str, list[float]] = {k: [] for k in
                                           ("check", "shot", "check_small", "shot_small")}
        walls: dict[str, list[float]] = {"check": [], "shot": []}
        svg = str(Path(folder) / "shot.svg")
        for i in range(runs):
            for key, path in (("check", big), ("check_small", small)):
                mb, wall = peak_mb(["replay", str(path), "--check"])
                figures[key].append(mb)
                walls.setdefault(key, []).append(wall)
            for key, path in (("shot", big), ("shot_small", small)):
                os.unlink(svg) if os.path.exists(svg) else None
                mb, wall = peak_mb(["screenshot", str(path), svg, "--at", "end"])
                figures[key].append(mb)
                walls.setdefault(key, []).append(wall)
            log(f"run {i + 1}/{runs}: replay --check {figures['check'][-1]:.0f} MB "
                f"({walls['check'][-1]:.0f} s), screenshot {figures['shot'][-1]:.0f} MB "
                f"({walls['shot'][-1]:.0f} s); small: {figures['check_small'][-1]:.0f} MB, "
                f"{figures['shot_small'][-1]:.0f} MB")
    left = leftovers()
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    median = {k: statistics.median(v) for k, v in figures.items()}
    value = max(median["check"], median["shot"])
    log(f"replay --check: {spread(figures['check'], '.0f')} MB; "
        f"screenshot: {spread(figures['shot'], '.0f')} MB")
    log(f"replay memory: {value:.0f} MB peak for {args.tasks:,} tasks (target <= "
        f"{TARGET_MB:.0f} MB); took {time.perf_counter() - began:.0f} s")
    print(json.dumps({
        "metric": "replay_memory",
        "value": round(value, 1),
        "unit": "MB",
        "target": TARGET_MB,
        "better": "lower",
        "check_mb": round(median["check"], 1),
        "screenshot_mb": round(median["shot"], 1),
        "check_small_mb": round(median["check_small"], 1),
        "screenshot_small_mb": round(median["shot_small"], 1),
        "growth_mb": round(value - max(median["check_small"], median["shot_small"]), 1),
        "check_s": round(statistics.median(walls["check"]), 1),
        "screenshot_s": round(statistics.median(walls["shot"]), 1),
        "tasks": args.tasks,
        "runs": runs,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
