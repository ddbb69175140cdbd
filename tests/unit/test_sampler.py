"""The sampler returns real per-core figures and places a busy thread on a core."""

from __future__ import annotations

import sys
import threading

import psutil
import pytest

from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import CoreSample
from cpviz.engine.sampler import CoreSampler, Watched, read_thread_stat


def _spin(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        x = (x + 1) % 1_000_003


def test_first_published_sample_has_one_value_per_core() -> None:
    samples: list[CoreSample] = []
    sampler = CoreSampler(lambda e: samples.append(e), MonotonicClock(), hz=20)  # type: ignore[arg-type]
    sampler.start()
    try:
        while len(samples) < 2:
            threading.Event().wait(0.05)
    finally:
        sampler.stop()
    cores = psutil.cpu_count(logical=True)
    for sample in samples:
        assert len(sample.percents) == cores
        assert all(0.0 <= p <= 100.0 for p in sample.percents)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="placement reads /proc")
def test_a_busy_thread_is_placed_on_a_core_with_its_cpu() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=_spin, args=(stop,), name="busy", daemon=True)
    busy.start()
    try:
        assert busy.native_id is not None
        watched = [Watched("thread", busy.native_id, "busy")]
        sampler = CoreSampler(lambda e: None, MonotonicClock(), roles=lambda: watched)
        sampler.prime()
        # Sample until the thread has been seen using CPU: a behaviour, not a deadline.
        placement = None
        for _ in range(50):
            threading.Event().wait(0.1)
            sample = sampler.sample()
            found = [p for p in sample.placements if p.ident == busy.native_id]
            if found and found[0].cpu_pct > 0:
                placement = found[0]
                break
    finally:
        stop.set()
        busy.join()
    assert placement is not None, "the busy thread never showed any CPU"
    assert placement.role == "thread"
    assert 0 <= placement.core < (psutil.cpu_count(logical=True) or 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_thread_stat_reads_this_thread() -> None:
    got = read_thread_stat(threading.get_native_id())
    assert got is not None
    core, cpu_s = got
    assert core >= 0 and cpu_s >= 0
    assert read_thread_stat(2**31 - 1) is None
