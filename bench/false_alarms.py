"""False alarms: how many freezes and stalls cpviz reports in scenes where nothing is wrong.

A false alarm teaches something untrue, so it counts as much as a missed one. Each calm scene
(blocking's two fixes, the I/O fan-out, the pipeline) and the busy-pool scene (a plain ``def``
waiting in ``multiprocessing.Pool.map`` while the workers compute) runs N times through the
real observed process; every freeze and every stall reported is false. The baseline is the
same count for a scene that does block (``blocking:sync-sleep``), run alongside, which must
report every freeze it makes: a bench that saw no alarm anywhere would prove nothing.

Target: 0 false incidents and 0 false stalls. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from _common import end_on_sigterm, leftovers, log

from cpviz.engine.headless import finish
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from cpviz.workloads.registry import lab_catalogue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POOL = "tests/corpus/pool_map.py:main"

#: (label, workload key or None for the pool scene, mode, settings)
CALM: list[tuple[str, str | None, str | None, dict[str, Any]]] = [
    ("blocking:async-sleep", "blocking", "async-sleep", {"duration_s": 2}),
    ("blocking:offload", "blocking", "offload", {"duration_s": 2}),
    ("io:concurrent", "io", "concurrent", {}),
    ("pipeline:steady", "pipeline", "steady", {"messages": 200}),
    ("pool map (your code)", None, None, {}),
]
BLOCKING = ("blocking:sync-sleep", "blocking", "sync-sleep", {"duration_s": 2})


def count(lab: ObservedLab, pool_key: str, scene: tuple[str, str | None, str | None,
          dict[str, Any]], runs: int) -> tuple[int, int]:
    """(incidents, stalls) over ``runs`` runs of one scene."""
    _label, key, mode, settings = scene
    incidents = stalls = 0
    for _ in range(runs):
        model = Model(lab.cores)
        run_id = lab.launch(key or pool_key, mode, settings)
        result = finish(lab, model, run_id, timeout=120)
        if result.outcome != "completed":
            raise SystemExit(f"{scene[0]} ended {result.outcome}")
        incidents += len(result.incidents)
        stalls += sum(1 for s in model.stalls if s.run_id == run_id)
    return incidents, stalls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs of each scene (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each scene")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    end_on_sigterm()
    os.chdir(ROOT)  # the pool scene's file is named from the checkout's root
    workloads = lab_catalogue(POOL)
    pool_key = workloads[-1].key
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    lab = ObservedLab(workloads, user=POOL)
    try:
        lab.start()
        for scene in [*CALM, BLOCKING]:
            incidents, stalls = count(lab, pool_key, scene, runs)
            rows.append({"scene": scene[0], "runs": runs, "incidents": incidents,
                         "stalls": stalls})
            log(f"{scene[0]:<24} {runs} runs: {incidents} freezes, {stalls} stalls")
    finally:
        lab.close()
    left = leftovers()
    if left:
        log(f"left running: {left}")
        return 1
    calm = [r for r in rows if r["scene"] != BLOCKING[0]]
    false_incidents = sum(r["incidents"] for r in calm)
    false_stalls = sum(r["stalls"] for r in calm)
    caught = rows[-1]["incidents"]
    log(f"false alarms: {false_incidents} freezes and {false_stalls} stalls in "
        f"{len(calm) * runs} calm runs; the blocking scene raised {caught} freezes "
        f"(target 0 false; took {time.perf_counter() - started:.0f} s)")
    print(json.dumps({
        "metric": "false_alarms", "value": false_incidents + false_stalls, "unit": "alarms",
        "target": 0, "better": "lower", "false_incidents": false_incidents,
        "false_stalls": false_stalls, "runs_per_scene": runs, "blocking_scene_incidents": caught,
        "scenes": rows, "python": sys.version.split()[0],
    }))
    return 0 if caught > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
