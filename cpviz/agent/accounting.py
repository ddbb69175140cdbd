"""CPU and context-switch figures of the observed process and its workers, read from inside.

Used for ``RunContext.measure()`` blocks (a sweep's points) and by a lab that runs without a
viewer. A run watched through the channel is charged from outside instead, by the viewer
(:mod:`cpviz.engine.accounting`), so nothing the viewer does can land in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import psutil


def cpu_snapshot(pool_pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds so far: this process (key 0, reaped children included) and each live worker."""
    me = psutil.Process()
    times = me.cpu_times()
    out = {0: times.user + times.system + times.children_user + times.children_system}
    for pid in pool_pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(max(0.0, v - before.get(pid, 0.0)) for pid, v in after.items())


def ctx_switch_snapshot(pool_pids: Sequence[int]) -> dict[int, int]:
    """Context switches so far: this process (key 0) and each live worker."""
    out = {0: sum(psutil.Process().num_ctx_switches())}
    for pid in pool_pids:
        with contextlib.suppress(psutil.Error):
            out[pid] = sum(psutil.Process(pid).num_ctx_switches())
    return out


def switches_between(before: dict[int, int], after: dict[int, int]) -> int:
    return sum(max(0, v - before.get(pid, 0)) for pid, v in after.items())
