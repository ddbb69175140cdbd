"""Why the loop froze: the OS's view of the loop thread, read from outside, beside its stack.

The watchdog in the observed process sees *where* the loop thread is (its stack), but a stack
cannot tell a thread that is running from one that waits for the GIL or for a CPU. The OS can:

* ``/proc/<pid>/task/<tid>/schedstat`` counts, in nanoseconds, the time the thread spent on a
  CPU and the time it spent runnable but waiting for one (run delay);
* ``/proc/<pid>/task/<tid>/wchan`` names where a sleeping thread sleeps: a futex is CPython's
  GIL (or a lock), anything else a blocking call such as ``select`` or ``nanosleep``.

:class:`LoopSampler` keeps those for the observed loop thread, and the CPU of the program's
other threads, as the OS rows' sampler reads them about a hundred times a second while runs are
going, from the viewer's own thread, so it never takes the observed interpreter's GIL.
:func:`classify` then splits a freeze into the time the loop's own code held it (``blocking``),
waited on the GIL while other threads ran Python (``gil``), waited for a CPU (``cpu``) and spent
collecting garbage (``gc``), names the biggest, and says what was behind it. Where the platform
cannot tell, the cause is ``unknown``: it is never guessed.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cpviz.engine.clock import Clock
from cpviz.engine.events import CoreSample, IncidentEnd, IncidentStart, ThreadAt
from cpviz.engine.osrows import Reading, supported

#: Readings a second while runs are going (the OS rows' sampler's rate): sizes the history.
BUSY_HZ = 100.0
#: Seconds of history kept (a freeze is classified over its whole span).
HISTORY_S = 30.0
#: The blocking-call text the watchdog gives pure Python work on the loop's own stack.
PURE_PYTHON = "CPU-bound Python code"
#: Below this share of a freeze, a thread is not counted among those that held the GIL.
HOLDER_SHARE = 0.02


@dataclass
class Tick:
    """What the loop thread did over one sampling interval ``[t0, t1]`` (seconds each)."""

    t0: float
    t1: float
    #: On a CPU.
    run: float
    #: Runnable, waiting for a CPU.
    delay: float
    #: Asleep in a futex: the GIL, or a lock.
    futex: float
    #: Asleep in anything else: a blocking call, or select.
    sleep: float
    #: CPU of the program's other threads in the interval, by OS thread id.
    others: dict[int, float] = field(default_factory=dict)


@dataclass
class Totals:
    """Ticks summed over a window (each tick pro-rated by how much of it falls inside)."""

    span: float = 0.0
    covered: float = 0.0
    run: float = 0.0
    delay: float = 0.0
    futex: float = 0.0
    sleep: float = 0.0
    others: dict[int, float] = field(default_factory=dict)


class LoopSampler:
    """The observed loop thread and its siblings as the OS saw them, interval by interval.

    It reads nothing itself: the OS rows' sampler (:mod:`cpviz.engine.osrows`) reads every
    thread of the observed tree anyway, and hands each sample over through :meth:`feed`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.ticks: deque[Tick] = deque(maxlen=int(HISTORY_S * BUSY_HZ))
        self._pid = 0
        self._loop_tid = 0
        self._skip: frozenset[int] = frozenset()
        self._last: tuple[float, float, float, dict[int, float]] | None = None
        self._lock = threading.Lock()

    def watch(self, pid: int, loop_tid: int, probes: Iterable[int]) -> None:
        """Watch ``loop_tid`` of process ``pid``; ``probes`` are cpviz's own threads there."""
        with self._lock:
            if (pid, loop_tid) != (self._pid, self._loop_tid):
                self._last = None
            self._pid, self._loop_tid = pid, loop_tid
            self._skip = frozenset((*probes, loop_tid))

    def feed(self, now: float, pid: int, threads: Mapping[int, Reading]) -> None:
        """Take the loop thread and its siblings from a sample the OS rows' sampler made (it
        reads every thread of the process anyway), in place of reading them again here."""
        with self._lock:
            mine, loop_tid, skip = self._pid, self._loop_tid, self._skip
        if pid != mine or not loop_tid:
            return
        loop = threads.get(loop_tid)
        if loop is None:
            self._last = None
            return
        others = {tid: r.cpu_ns / 1e9 for tid, r in threads.items() if tid not in skip}
        self._fold(now, (loop.cpu_ns / 1e9, loop.delay_ns / 1e9), loop.state == b"R",
                   bool(loop.futex), others)

    def _fold(self, now: float, loop: tuple[float, float], runnable: bool, in_futex: bool,
              others: dict[int, float]) -> None:
        """Append the interval since the last reading. ``runnable``: the state letter is R
        (running or runnable); schedstat adds run delay only once the thread gets a CPU, so a
        thread starved right now shows as R with no run time and no delay yet."""
        last, self._last = self._last, (now, loop[0], loop[1], others)
        if last is None:
            return
        t0, run0, delay0, others0 = last
        dt = max(now - t0, 1e-9)
        run = min(dt, max(0.0, loop[0] - run0))
        delay = max(0.0, loop[1] - delay0)
        if runnable:
            delay = max(delay, dt - run)
        delay = min(delay, dt - run)
        asleep = max(0.0, dt - run - delay)
        self.ticks.append(Tick(
            t0, now, run, delay, asleep if in_futex else 0.0, 0.0 if in_futex else asleep,
            {tid: max(0.0, cpu - others0.get(tid, cpu)) for tid, cpu in others.items()},
        ))

    def totals(self, a: float, b: float) -> Totals:
        """What the loop thread did over ``[a, b]``, from the ticks that cover it."""
        out = Totals(span=max(0.0, b - a))
        for tick in list(self.ticks):
            if tick.t1 <= a or tick.t0 >= b:
                continue
            width = tick.t1 - tick.t0
            part = (min(b, tick.t1) - max(a, tick.t0)) / width if width > 0 else 0.0
            out.covered += part * width
            out.run += part * tick.run
            out.delay += part * tick.delay
            out.futex += part * tick.futex
            out.sleep += part * tick.sleep
            for tid, cpu in tick.others.items():
                out.others[tid] = out.others.get(tid, 0.0) + part * cpu
        return out


@dataclass(frozen=True)
class Verdict:
    """Why a freeze happened: the biggest cause, the split, and what was behind it."""

    cause: str
    shares: tuple[tuple[str, float], ...]
    detail: str


def _holders(threads: tuple[ThreadAt, ...], others: dict[int, float], span: float,
             ) -> list[ThreadAt]:
    """The other threads that ran for a good part of the freeze, busiest first."""
    ran = {tid: cpu for tid, cpu in others.items() if cpu >= HOLDER_SHARE * span}
    by_tid = {t.tid: t for t in threads}
    busiest = sorted(ran, key=lambda tid: -ran[tid])
    return [by_tid[tid] if tid in by_tid else ThreadAt(f"thread {tid}", tid, None)
            for tid in busiest]


def _where(thread: ThreadAt) -> str:
    frame = thread.frame
    if frame is None:
        return "outside your code"
    return f"{os.path.basename(frame.file)}:{frame.line} {frame.function}()"


def _gil_detail(holders: list[ThreadAt]) -> str:
    if not holders:
        return "other threads ran Python while the loop waited for the GIL"
    places: dict[str, int] = {}
    for thread in holders:
        places[_where(thread)] = places.get(_where(thread), 0) + 1
    shown = "; ".join(f"{n} in {place}" if n > 1 else place for place, n in
                      sorted(places.items(), key=lambda item: -item[1])[:3])
    count = len(holders)
    return f"{count} thread{'s' if count != 1 else ''} running Python: {shown}"


def _cpu_detail(delay: float, samples: list[CoreSample], cores: int) -> str:
    text = f"the loop thread was ready but had no CPU for {delay:.2f} s"
    if not samples:
        return text
    busy = sum(sum(s.percents) for s in samples) / len(samples) / 100
    program = sum(sum(p.cpu_pct for p in s.placements if p.role != "ui")
                  for s in samples) / len(samples) / 100
    outside = max(0.0, busy - program)
    return (f"{text}; cores busy {busy:.1f} of {cores}: this program {program:.1f}, "
            f"other processes {outside:.1f}")


def classify(
    start: IncidentStart,
    span: float,
    totals: Totals | None,
    *,
    end: IncidentEnd | None = None,
    samples: list[CoreSample] | None = None,
    cores: int = 1,
) -> Verdict:
    """Why the loop froze for ``span`` seconds from ``start.since``.

    ``totals`` is the loop thread's time over the freeze as the OS saw it (None where the
    platform cannot tell); ``end`` brings the final stack verdict and the garbage collections;
    ``samples`` are the core samples of the freeze (to say what held the cores).
    """
    culprit = end.culprit if end is not None and end.culprit is not None else start.culprit
    call = (end.blocking_call if end is not None and end.culprit is not None
            else start.blocking_call)
    in_call = culprit is not None and call is not None and call != PURE_PYTHON
    gc_s = min(end.gc_s, span) if end is not None else 0.0
    if totals is None or totals.covered < 0.5 * span:
        # No OS view (or too little of one): only the stack speaks.
        if gc_s >= 0.5 * span:
            return Verdict("gc", (("gc", gc_s / span),), _gc_detail(end, gc_s))
        if culprit is not None:
            return Verdict("blocking", (("blocking", 1.0),), f"{call or 'code'} on the loop")
        return Verdict("unknown", (), "the platform does not show why the loop thread waited")
    scale = span / totals.covered if totals.covered else 1.0
    run = totals.run * scale
    delay = totals.delay * scale
    futex = totals.futex * scale
    asleep = totals.sleep * scale
    others = sum(totals.others.values()) * scale
    parts: dict[str, float] = {"gc": gc_s, "cpu": delay}
    running = max(0.0, run - gc_s)
    if culprit is not None:
        # The loop's own code: running it, or inside a call that blocks (a lock is a futex).
        parts["blocking"] = running + asleep + (futex if in_call else 0.0)
        if not in_call:
            parts["gil"] = futex if others > 0 else 0.0
    else:
        parts["gil"] = futex if others > 0 else 0.0
    known = sum(parts.values())
    parts["unknown"] = max(0.0, span - known)
    # Shares of the freeze; estimates that overlap (a collection inside a blocking step) are
    # scaled so they never add up to more than the whole.
    whole = max(span, known)
    shares = tuple(sorted(((k, v / whole) for k, v in parts.items() if v > 0.005 * whole),
                          key=lambda kv: -kv[1]))
    cause = shares[0][0] if shares else "unknown"
    if cause == "gil":
        holders = _holders(start.threads, totals.others, totals.covered)
        detail = _gil_detail(holders)
    elif cause == "cpu":
        detail = _cpu_detail(delay, samples or [], cores)
    elif cause == "gc":
        detail = _gc_detail(end, gc_s)
    elif cause == "blocking":
        where = f"{os.path.basename(culprit.file)}:{culprit.line}" if culprit else "?"
        detail = f"{call or 'code'} at {where}"
    else:
        detail = "the loop thread waited, and the OS does not say on what"
    return Verdict(cause, shares, detail)


def _gc_detail(end: IncidentEnd | None, gc_s: float) -> str:
    if end is None or end.gc_generation < 0:
        return f"garbage collection for {gc_s:.2f} s"
    return (f"garbage collection of generation {end.gc_generation} for {gc_s:.2f} s, "
            f"{end.gc_collected} objects collected")


class Classifier:
    """Gives each freeze its cause as its events pass through the viewer."""

    def __init__(self, sampler: LoopSampler, cores: int,
                 samples: Callable[[float, float], list[CoreSample]]) -> None:
        self.sampler = sampler
        self.cores = cores
        self._samples = samples
        self._starts: dict[int, IncidentStart] = {}
        #: Final verdicts by incident id, for the runs' results.
        self.final: dict[int, Verdict] = {}
        self._supported = supported()

    def _totals(self, a: float, b: float) -> Totals | None:
        return self.sampler.totals(a, b) if self._supported else None

    def started(self, ev: IncidentStart, now: float) -> Verdict:
        """A first verdict, over the freeze so far."""
        self._starts[ev.incident_id] = ev
        span = max(now - ev.since, 1e-6)
        return classify(ev, span, self._totals(ev.since, now),
                        samples=self._samples(ev.since, now), cores=self.cores)

    def ended(self, ev: IncidentEnd) -> Verdict | None:
        """The final verdict, over the whole freeze."""
        start = self._starts.pop(ev.incident_id, None)
        if start is None:
            return None
        a, b = start.since, start.since + ev.duration_s
        verdict = classify(start, max(ev.duration_s, 1e-6), self._totals(a, b), end=ev,
                           samples=self._samples(a, b), cores=self.cores)
        self.final[ev.incident_id] = verdict
        while len(self.final) > 1000:
            del self.final[next(iter(self.final))]
        return verdict

    def verdict(self, incident_id: int, span: float | None = None) -> Verdict | None:
        """The final verdict; for a freeze whose end has not arrived yet (a run can end in the
        very step that froze the loop, before the next beat closes the freeze), a verdict over
        its first ``span`` seconds."""
        final = self.final.get(incident_id)
        start = self._starts.get(incident_id)
        if final is not None or start is None or span is None:
            return final
        a, b = start.since, start.since + max(span, 1e-6)
        return classify(start, max(span, 1e-6), self._totals(a, b),
                        samples=self._samples(a, b), cores=self.cores)

