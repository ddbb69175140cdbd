"""``cpviz bench``: the proof table. The claims people repeat, measured on this machine.

Every row is a real run in the lab with every probe on, and every verdict is worded from that
row's own figures: nothing here is a number written in advance. Speedups compare runs made in the
same sitting (CPU rows against the serial run of the same kind), except I/O, where the serial
time follows exactly from the parameters (N × latency) and running it would take minutes.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cpviz import __version__

if TYPE_CHECKING:
    from cpviz.engine.observed import ObservedLab

Settings = dict[str, Any]
#: The longest any one row may take before the bench gives up on it.
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Row:
    """One comparison: a workload run and how to word what it showed."""

    group: str
    workload: str
    mode: str
    settings: Settings
    #: The row whose wall time is this row's baseline (by label), if any.
    baseline: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.workload}:{self.mode}"


@dataclass
class Measured:
    """A row once run: the result as ``cpviz run --json`` prints it, plus what the lab swept."""

    row: Row
    result: dict[str, Any]
    sweep: list[dict[str, float]] = field(default_factory=list)
    speedup: float | None = None
    verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "group": self.row.group,
            "row": self.row.name,
            "workload": self.row.workload,
            "mode": self.row.mode,
            "params": r["params"],
            "outcome": r["outcome"],
            "wall_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "parallelism": r["parallelism"],
            "speedup": None if self.speedup is None else round(self.speedup, 4),
            "incidents": len(r["incidents"]),
            "verdict": self.verdict,
            "sweep": self.sweep,
            "extra": {k: v for k, v in r.items() if k not in _CORE_KEYS},
        }


_CORE_KEYS = frozenset({
    "workload", "mode", "params", "outcome", "wall_s", "cpu_s", "parallelism", "speedup",
    "speedup_basis", "tasks", "steps", "incidents",
})


def plan(cores: int, quick: bool) -> list[Row]:
    """The comparisons, smaller under ``--quick`` (under a minute on two cores)."""
    io_n = 1000
    serial_n = 10 if quick else 20
    bounded_n = 300 if quick else 1000
    jobs = 4 if quick else 8
    rows: list[Row] = [
        Row("I/O", "io", "serial", {"n": serial_n, "latency_ms": 200}, label="io serial"),
        Row("I/O", "io", "concurrent", {"n": io_n, "latency_ms": 200}, label="io concurrent"),
        Row("I/O", "io", "bounded", {"n": bounded_n, "latency_ms": 200, "k": 50},
            label="io bounded k=50"),
    ]
    for kind in ("python", "hashlib", "zlib"):
        settings: Settings = {"jobs": jobs, "kind": kind}
        base = f"cpu {kind} serial"
        rows.append(Row(f"CPU ({kind})", "cpu", "serial", settings, label=base))
        rows.append(Row(f"CPU ({kind})", "cpu", "threads", settings, base, f"cpu {kind} threads"))
        rows.append(Row(f"CPU ({kind})", "cpu", "processes", settings, base,
                        f"cpu {kind} processes"))
    blocking: Settings = {"duration_s": 2.0 if quick else 4.0, "tickers": 5}
    rows += [
        Row("blocking", "blocking", "sync-sleep", blocking, label="blocking time.sleep"),
        Row("blocking", "blocking", "async-sleep", blocking, label="fixed: await sleep"),
        Row("blocking", "blocking", "offload", blocking, label="fixed: to_thread"),
    ]
    amdahl: Settings = {"serial": 0.2, "max_workers": min(4, 2 * cores) if quick else 2 * cores}
    if quick:
        amdahl["work"] = _default("amdahl", "work") // 3
    rows.append(Row("Amdahl", "amdahl", "processes", amdahl, label="amdahl serial=0.2"))
    return rows


def _default(workload: str, name: str) -> Any:
    from cpviz.workloads.registry import find

    return next(p.default for p in find(workload).params if p.name == name)


def verdict(m: Measured, cores: int) -> str:
    """One line, worded from the row's own figures."""
    r, row = m.result, m.row
    par, wall = r["parallelism"], r["wall_s"]
    if r["outcome"] != "completed":
        return f"did not complete: {r['outcome']}"
    if row.workload == "io":
        n, latency = r["params"]["n"], r["params"]["latency_ms"] / 1000
        if row.mode == "serial":
            return f"serial: one wait after another, {wall / n * 1000:.0f} ms a call"
        if row.mode == "bounded":
            k = r["params"]["k"]
            law = math.ceil(n / k) * latency
            return (f"bounded: {math.ceil(n / k)} waves of {k}; ⌈N/k⌉×L = {law:.2f} s, "
                    f"measured {wall:.2f} s")
        return (f"I/O-bound: overlapping waits gave ×{m.speedup or 0:.0f} "
                f"on {par:.2f} cores of CPU")
    if row.workload == "cpu":
        kind = r["params"].get("kind", "python")
        if row.mode == "serial":
            return f"baseline: one job at a time, {par:.2f} cores"
        spd = f"×{m.speedup:.2f}" if m.speedup is not None else "no baseline"
        if row.mode == "threads":
            if kind == "python":
                return f"GIL: threads used {par:.1f} cores ({spd})"
            return f"{kind} releases the GIL: threads used {par:.1f} cores ({spd})"
        return f"processes used {par:.1f} of {cores} cores ({spd})"
    if row.workload == "blocking":
        incidents = r["incidents"]
        lag = r.get("max_loop_lag_s", 0.0) * 1000
        if incidents:
            worst = max(incidents, key=lambda i: i["duration_s"])
            where = f"{worst['file'].rsplit('/', 1)[-1]}:{worst['line']}" if worst["file"] else "?"
            return (f"blocked: {len(incidents)} freezes, worst "
                    f"{worst['duration_s'] * 1000:.0f} ms at {where}")
        return f"fixed: no freeze, worst loop lag {lag:.0f} ms"
    if row.workload == "amdahl" and m.sweep:
        best = max(m.sweep, key=lambda p: p.get("speedup", 0.0))
        return (f"Amdahl: best ×{best.get('speedup', 0):.2f} at n={best['x']:.0f}; "
                f"law says ×{best.get('law', float('nan')):.2f}")
    return ""


def run_bench(
    lab: ObservedLab, quick: bool, on_row: Callable[[int, int, Row], None] | None = None
) -> dict[str, Any]:
    """Run every row in ``lab`` (not yet started; closed at the end); returns the JSON shape
    ``cpviz bench --json`` prints."""
    from cpviz.engine.headless import run_to_end
    from cpviz.engine.model import Model
    from cpviz.workloads.registry import find

    model = Model(lab.cores)
    rows = plan(lab.cores, quick)
    out: list[Measured] = []
    walls: dict[str, float] = {}
    started = time.perf_counter()
    hello: dict[str, Any] = {}
    try:
        lab.start()
        hello = lab.interpreter()
        for i, row in enumerate(rows):
            if on_row is not None:
                on_row(i, len(rows), row)
            workload = find(row.workload)
            mode, params = workload.resolve(row.mode, row.settings)
            run_id = lab.start_run(workload, mode, params)
            result = run_to_end(lab, model, run_id, timeout=RUN_TIMEOUT_S)
            sweep = result.pop("sweep", [])
            m = Measured(row, result, sweep)
            if row.baseline is not None and row.baseline in walls:
                m.speedup = walls[row.baseline] / max(result["wall_s"], 1e-9)
            elif result.get("speedup") is not None:
                m.speedup = result["speedup"]
            walls[row.name] = result["wall_s"]
            m.verdict = verdict(m, lab.cores)
            out.append(m)
    finally:
        lab.close()
    return {
        "cpviz": __version__,
        # The observed side's interpreter, which ran every row (``--python``): two benches,
        # a GIL build and a free-threaded one, can then be put side by side.
        "python": hello.get("python") or sys.version.split()[0],
        "gil": hello.get("gil", True),
        "interpreter": lab.python,
        "platform": platform.platform(),
        "cores": lab.cores,
        "pinned_cores": len(lab.pinned) if lab.pinned is not None else None,
        "quick": quick,
        "total_s": round(time.perf_counter() - started, 3),
        "rows": [m.as_dict() for m in out],
    }


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log or a pipe: keep each verdict on one line
    table = Table(
        title=f"cpviz bench — {report['cores']} cores, Python {report['python']}"
        + (", GIL on" if report.get("gil", True) else ", free-threaded (GIL off)")
        + (" (quick)" if report["quick"] else ""),
        caption=f"{report.get('interpreter', '')}: measured in {report['total_s']:.0f} s; "
        "parallelism = CPU seconds ÷ wall",
    )
    for name, justify in (("comparison", "left"), ("wall", "right"), ("cpu", "right"),
                          ("parallelism", "right"), ("speedup", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    group = None
    for r in report["rows"]:
        if group is not None and r["group"] != group:
            table.add_section()
        group = r["group"]
        spd = "—" if r["speedup"] is None else f"×{r['speedup']:.2f}"
        table.add_row(r["row"], f"{r['wall_s']:.3f} s", f"{r['cpu_s']:.3f} s",
                      f"{r['parallelism']:.2f}", spd, r["verdict"])
    console.print(table)
