"""Thread and process rows, sampled from the OS: who ran, who waited for a CPU, who slept.

The viewer reads every thread of the observed process, and every process below it, from
``/proc`` about a hundred times a second while a run is going (ten when idle), from its own
thread, so it never takes the observed interpreter's GIL. Per thread and interval:

* time on a CPU: the ``schedstat`` nanosecond counter's delta. The state letter in ``stat``
  cannot tell running from runnable (both are ``R``): by that letter two pure-Python threads
  were "running" at once in a third of samples, while their CPU deltas show they take turns;
* time runnable but waiting for a CPU: ``schedstat``'s run delay;
* the CPU it last ran on (``stat`` field 39);
* whether a sleeping thread sleeps in a futex (``wchan``, else the syscall it is in). A futex
  wait while a sibling thread of the same process ran is marked ``gil?``: it is the GIL or a
  lock, which the OS cannot tell apart. Where neither file says, the row says so.

Rows go into a :class:`Store` (a ring per row, a minute and more of history) that a view asks
per column; totals since the start feed each run's figures (:func:`run_figures`).
"""

from __future__ import annotations

import bisect
import math
import os
import platform
import threading
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cpviz.engine import procfs
from cpviz.engine.clock import Clock

#: Samples a second while a run is going, and while none is.
BUSY_HZ = 100.0
IDLE_HZ = 10.0
#: Who is in the tree is listed again at most this often (reads go on at the sample rate).
REFRESH_S = 0.05
#: Samples kept: over 80 s at BUSY_HZ, far more when idle.
CAPACITY = 8192
#: Rows kept at most; the longest gone go first.
MAX_ROWS = 160
#: Simultaneity is judged over windows this long: the kernel books a running thread's CPU time
#: at each scheduler tick, so one 10 ms sample can be off by a tick (4 ms at 250 Hz) per
#: running thread, which alone made pure-Python threads look simultaneous in 16% of samples.
WINDOW_S = 0.05
#: The accounting slack allowed on top of one core's worth: a scheduler tick at 250 Hz.
TICK_S = 0.004
#: A sibling that ran at least this share of an interval can be the one holding the GIL.
GIL_SIBLING = 0.2
#: Roles whose threads do a run's work (worker processes are always workers).
WORKER_ROLES = frozenset({"thread", "other", ""})
#: Quantized fractions: 0..254 of the interval; 255 means "not sampled".
_Q = 254
_NONE = 255

#: A row: ("thread", tid) for the observed process's threads, ("process", pid) for the rest.
Key = tuple[str, int]
#: The observed tree as the wire tells it: root pid (0: none), and tid → (name, role).
Tree = tuple[int, Mapping[int, tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class Reading:
    """One thread at one instant, as /proc shows it."""

    #: Nanoseconds on a CPU so far (``schedstat`` field 1).
    cpu_ns: int
    #: Nanoseconds runnable but waiting for a CPU so far (``schedstat`` field 2).
    delay_ns: int
    #: ``stat`` state letter: R (running or runnable), S, D, ...
    state: bytes
    #: CPU it last ran on.
    core: int
    #: Asleep in a futex; None when not asleep or where the platform does not say.
    futex: bool | None = None
    #: Times it was given a CPU so far (``schedstat`` field 3).
    turns: int = 0


@dataclass(frozen=True, slots=True)
class Slice:
    """What one thread did over one interval, as fractions of it (the rest is waiting)."""

    run: float
    delay: float
    gil: float
    #: CPU it ran on, or -1 if it did not run.
    core: int


def slice_of(prev: Reading, cur: Reading, dt_ns: int, *, sibling_ran: bool,
             has_gil: bool = True) -> Slice:
    """Classify one interval of a thread from two readings.

    Running comes from the CPU-time delta, never from the state letter. A thread that is
    runnable right now has its wait booked only once it gets a CPU, so its ``R`` letter
    counts the rest of the interval as runnable (the loop sampler does the same). A GIL
    waiter wakes every switch interval (5 ms) to ask for it, so a futex sleeper that was not
    given a CPU once in the interval waits for something else (a queue, a lock, a join).
    """
    dt = max(dt_ns, 1)
    run = min(1.0, max(0.0, (cur.cpu_ns - prev.cpu_ns) / dt))
    delay = max(0.0, (cur.delay_ns - prev.delay_ns) / dt)
    if cur.state == b"R":
        delay = max(delay, 1.0 - run)
    delay = min(delay, 1.0 - run)
    rest = max(0.0, 1.0 - run - delay)
    woke = cur.turns > prev.turns
    gil = rest if (has_gil and sibling_ran and woke and cur.futex and cur.state == b"S") else 0.0
    return Slice(run, delay, gil, cur.core if run > 0 else -1)


def simultaneous(worker_cpu_ns: Mapping[Key, int], dt_ns: int,
                 slack_ns: int = int(TICK_S * 1e9)) -> bool:
    """Whether two or more workers ran at once in a window: together they used more than one
    core's worth of it (each counted at most whole) plus the kernel's accounting slack, which
    one at a time cannot."""
    return sum(min(c, dt_ns) for c in worker_cpu_ns.values()) > dt_ns + slack_ns


@dataclass(frozen=True, slots=True)
class Cell:
    """One row over one column's span: shares of the time sampled within it."""

    #: Share of the span that samples cover (0: the row did not exist, or no samples).
    covered: float
    running: float
    runnable: float
    gil: float
    #: The core it ran on longest, or -1.
    core: int

    @property
    def waiting(self) -> float:
        return max(0.0, 1.0 - self.running - self.runnable - self.gil)


@dataclass
class RowInfo:
    """Who a row is."""

    key: Key
    label: str
    role: str
    #: What the platform does not let this row tell ("" when it tells everything).
    note: str = ""


@dataclass
class _Row:
    info: RowInfo
    run: array = field(default_factory=lambda: array("B"))  # type: ignore[type-arg]
    delay: array = field(default_factory=lambda: array("B"))  # type: ignore[type-arg]
    gil: array = field(default_factory=lambda: array("B"))  # type: ignore[type-arg]
    core: array = field(default_factory=lambda: array("h"))  # type: ignore[type-arg]
    last: int = 0


class Store:
    """The rows' history: a shared ring of sample times and a ring per row, all of one size
    (a few bytes per row and sample), so memory is bounded whatever runs."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.t0 = array("d", [0.0]) * capacity
        self.t1 = array("d", [0.0]) * capacity
        #: Samples written so far (the next one goes to slot ``n % capacity``).
        self.n = 0
        self.rows: dict[Key, _Row] = {}
        #: Bumped when rows come or go, so a view knows to list them again.
        self.version = 0
        self.lock = threading.Lock()

    def append(self, t0: float, t1: float, slices: Mapping[Key, Slice],
               infos: Mapping[Key, RowInfo]) -> None:
        """One sample: every row's slice over ``[t0, t1]`` (rows not in it were not seen)."""
        cap = self.capacity
        with self.lock:
            i = self.n % cap
            self.t0[i] = t0
            self.t1[i] = t1
            for key in slices.keys() - self.rows.keys():
                self.rows[key] = _Row(infos[key], array("B", [_NONE]) * cap,
                                      array("B", [_NONE]) * cap, array("B", [_NONE]) * cap,
                                      array("h", [-1]) * cap)
                self.version += 1
            for key, row in self.rows.items():
                s = slices.get(key)
                if s is None:
                    row.run[i] = _NONE
                    continue
                row.run[i] = round(s.run * _Q)
                row.delay[i] = round(s.delay * _Q)
                row.gil[i] = round(s.gil * _Q)
                row.core[i] = s.core
                row.last = self.n
                if key in infos:
                    row.info = infos[key]
            self.n += 1
            self._forget()

    def clear(self) -> None:
        """Forget every sample and row (a replay going back refills it from the start)."""
        with self.lock:
            self.n = 0
            self.rows.clear()
            self.version += 1

    def _forget(self) -> None:
        gone = [k for k, r in self.rows.items() if r.last < self.n - self.capacity]
        live = len(self.rows) - len(gone)
        if live > MAX_ROWS:
            by_age = sorted((r.last, k) for k, r in self.rows.items() if r.last < self.n - 1)
            gone += [k for _, k in by_age[: live - MAX_ROWS]]
        for key in gone:
            self.rows.pop(key, None)
            self.version += 1

    def infos(self) -> list[RowInfo]:
        """The rows there are, in the order they first came."""
        with self.lock:
            return [r.info for r in self.rows.values()]

    def alive_since(self, key: Key, t: float) -> bool:
        """Whether row ``key`` was sampled at or after time ``t``."""
        with self.lock:
            row = self.rows.get(key)
            return row is not None and self.n > 0 and self.t1[row.last % self.capacity] >= t

    def latest(self) -> float:
        """End of the newest sample (0 if none)."""
        return self.t1[(self.n - 1) % self.capacity] if self.n else 0.0

    def columns(self, key: Key, start: float, step: float, ncols: int) -> list[Cell | None]:
        """Row ``key`` over ``ncols`` columns of ``step`` seconds from ``start``: a Cell per
        column (None where nothing was sampled), each the mean over its span."""
        out: list[Cell | None] = [None] * ncols
        end = start + step * ncols
        cap = self.capacity
        with self.lock:
            row = self.rows.get(key)
            if row is None or not self.n or step <= 0:
                return out
            lo = max(0, self.n - cap)
            t1 = self.t1
            # The first sample that ends after ``start`` (samples are in time order).
            first = bisect.bisect_right(_Times(t1, cap), start, lo, self.n)
            cov = [0.0] * ncols
            run_s = [0.0] * ncols
            delay_s = [0.0] * ncols
            gil_s = [0.0] * ncols
            cores: list[dict[int, float]] = [{} for _ in range(ncols)]
            for n in range(first, self.n):
                i = n % cap
                a, b = self.t0[i], t1[i]
                if a >= end:
                    break
                q = row.run[i]
                if q == _NONE or b <= a:
                    continue
                run, delay, gil = q / _Q, row.delay[i] / _Q, row.gil[i] / _Q
                core = row.core[i]
                c = max(0, int((a - start) / step))
                while c < ncols:
                    ca = start + c * step
                    part = min(b, ca + step) - max(a, ca)
                    if part > 0:
                        cov[c] += part
                        run_s[c] += part * run
                        delay_s[c] += part * delay
                        gil_s[c] += part * gil
                        if core >= 0 and run > 0:
                            on = cores[c]
                            on[core] = on.get(core, 0.0) + part * run
                    if ca + step >= b:
                        break
                    c += 1
        for c in range(ncols):
            w = cov[c]
            if w <= 0:
                continue
            on = cores[c]
            top = max(on, key=on.__getitem__) if on else -1
            out[c] = Cell(min(1.0, w / step), run_s[c] / w, delay_s[c] / w, gil_s[c] / w, top)
        return out

    def span(self, key: Key, a: float, b: float) -> Cell | None:
        """Row ``key`` over ``[a, b)``."""
        return self.columns(key, a, b - a, 1)[0]


class _Times:
    """The logical sequence of sample end times, for bisect."""

    __slots__ = ("cap", "t1")

    def __init__(self, t1: array, cap: int) -> None:  # type: ignore[type-arg]
        self.t1 = t1
        self.cap = cap

    def __getitem__(self, n: int) -> float:
        return float(self.t1[n % self.cap])

    def __len__(self) -> int:  # bisect is always given bounds
        return 0


@dataclass
class RowTotal:
    """What a row did since the sampler began, in nanoseconds."""

    label: str
    role: str
    cpu_ns: int = 0
    delay_ns: int = 0
    seen_ns: int = 0


@dataclass(frozen=True)
class Totals:
    """The sampler's running sums at one instant; two of them give a run's figures."""

    t: float
    sampled_ns: int
    simultaneous_ns: int
    rows: dict[Key, tuple[str, str, int, int, int]]


def run_figures(a: Totals, b: Totals, *, keep: int = 32) -> dict[str, Any]:
    """A run's figures from the totals at its start and end: ``simultaneous``, ``cpu_wait_s``
    and ``per_worker`` (running, runnable and waiting seconds, busiest first)."""
    sampled = b.sampled_ns - a.sampled_ns
    workers: list[dict[str, Any]] = []
    wait_ns = 0
    for key, (label, role, cpu, delay, seen) in b.rows.items():
        if key[0] == "thread" and role not in WORKER_ROLES:
            continue
        _l, _r, cpu0, delay0, seen0 = a.rows.get(key, (label, role, 0, 0, 0))
        run, waited, lived = cpu - cpu0, delay - delay0, seen - seen0
        if run <= 0 and waited <= 0:
            continue
        wait_ns += waited
        workers.append({
            "name": label, "kind": key[0], "id": key[1],
            "running_s": round(run / 1e9, 4), "runnable_s": round(waited / 1e9, 4),
            "waiting_s": round(max(0, lived - run - waited) / 1e9, 4),
        })
    workers.sort(key=lambda w: -w["running_s"])
    return {
        "simultaneous": (round((b.simultaneous_ns - a.simultaneous_ns) / sampled, 4)
                         if sampled > 0 else None),
        "cpu_wait_s": round(wait_ns / 1e9, 4),
        "per_worker": workers[:keep],
    }


@dataclass
class _Task:
    files: procfs.TaskFiles
    row: Key
    last: Reading | None
    #: Born since the last listing: its first interval is unknown (it began inside it).
    newborn: bool


#: What a sample hands a listener: (now, root pid, tid → reading of the root's threads).
Listener = Callable[[float, int, Mapping[int, Reading]], None]


class SampleTap(Protocol):
    """Gets every sample the store gets (the event stream's feed, so recordings keep rows)."""

    def add(self, t0: float, t1: float, slices: Mapping[Key, Slice],
            infos: Mapping[Key, RowInfo]) -> None: ...

    def flush(self) -> None:
        """Hand on what is gathered (a run's start or end, the sampler's stop)."""


class OsRows:
    """Samples the observed tree from outside on its own thread, into a :class:`Store`."""

    def __init__(self, clock: Clock, tree: Callable[[], Tree], *,
                 has_gil: Callable[[], bool | None] = lambda: True,
                 busy_hz: float = BUSY_HZ, idle_hz: float = IDLE_HZ,
                 capacity: int = CAPACITY) -> None:
        self.clock = clock
        self.store = Store(capacity)
        self.busy_hz = busy_hz
        self.idle_hz = idle_hz
        self._tree = tree
        self._has_gil = has_gil
        self._futex_nr = procfs.FUTEX_NR.get(platform.machine())
        self._tasks: dict[tuple[int, int], _Task] = {}
        self._infos: dict[Key, RowInfo] = {}
        self._root = 0
        #: The observed loop's thread (its sleeps are always read: see causes.LoopSampler).
        self._loop = 0
        self._listed_at = -math.inf
        self._prev_t: float | None = None
        self._totals: dict[Key, RowTotal] = {}
        self._sampled_ns = 0
        self._simultaneous_ns = 0
        #: The window being gathered: its length and each worker's CPU in it.
        self._window_ns = 0
        self._window: dict[Key, int] = {}
        self._busy = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Called after each sample with the root's thread readings (the loop sampler's feed).
        self.listeners: list[Listener] = []
        #: Gets every stored sample (see cpviz.engine.recording.os_samples).
        self.tap: SampleTap | None = None

    # -- the thread -----------------------------------------------------------------------------

    def busy(self, busy: bool) -> None:
        """Sample fast (a run is going) or slowly (none is)."""
        if busy and not self._busy:
            self._wake.set()
        self._busy = busy

    def start(self) -> None:
        if self._thread is None and supported():
            self._thread = threading.Thread(target=self._run, name="cpviz-osrows", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        with self._lock:
            for task in self._tasks.values():
                task.files.close()
            self._tasks.clear()
            if self.tap is not None:
                self.tap.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0 / (self.busy_hz if self._busy else self.idle_hz))
            self._wake.clear()
            try:
                self.sample()
            except Exception:  # a probe must never take the viewer down
                continue

    # -- sampling -------------------------------------------------------------------------------

    def _list(self, now: float) -> None:
        """Find who is in the tree now: new threads and processes get files, roles refresh."""
        root, names = self._tree()
        watching = root == self._root and self._listed_at > -math.inf
        if root != self._root:
            for task in self._tasks.values():
                task.files.close()
            self._tasks.clear()
            self._root = root
        self._listed_at = now
        self._loop = next((tid for tid, (_n, role) in names.items() if role == "loop"), 0)
        if not root:
            return
        # Walked through the kept-open ``children`` files, which cost a pread each; where the
        # platform has none, the accounting's walk finds the descendants.
        todo = [root]
        shown = True
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except (OSError, ValueError):
                continue
            for tid in tids:
                task = self._add(pid, tid, names, watching)
                kids = task.files.children()
                shown = shown and kids is not None
                todo.extend(kids or ())
            if pid == root and not shown:
                # psutil's walk, imported here only: the recording format reads this module's
                # row types inside the observed program, which has the standard library alone.
                from cpviz.engine.accounting import descendants

                todo.extend(descendants(root))

    def _add(self, pid: int, tid: int, names: Mapping[int, tuple[str, str]],
             watching: bool) -> _Task:
        """The task for thread ``tid`` of ``pid``, made on first sight; its row named."""
        if pid == self._root:
            key: Key = ("thread", tid)
            name, role = names.get(tid, ("", ""))
            if key not in self._infos or self._infos[key].role != role:
                label = name or _comm(pid, tid) or f"thread {tid}"
                self._infos[key] = RowInfo(key, label, role)
        else:
            key = ("process", pid)
            if key not in self._infos:
                self._infos[key] = RowInfo(key, _process_label(pid), "process")
        task = self._tasks.get((pid, tid))
        if task is None:
            task = self._tasks[(pid, tid)] = _Task(procfs.TaskFiles(pid, tid), key, None,
                                                   watching)
        return task

    def sample(self) -> None:
        """Read every thread of the tree once and append the interval since the last time."""
        with self._lock:
            self._sample()

    def mark(self) -> Totals:
        """A sample now, and the running sums (a run's start or end)."""
        with self._lock:
            self._sample()
            self._judge()
            if self.tap is not None:
                self.tap.flush()
            infos = self._infos
            return Totals(now_or(self._prev_t), self._sampled_ns, self._simultaneous_ns, {
                k: (infos[k].label if k in infos else r.label,
                    infos[k].role if k in infos else r.role, r.cpu_ns, r.delay_ns, r.seen_ns)
                for k, r in self._totals.items()})

    def _sample(self) -> None:
        now = self.clock.now()
        if now - self._listed_at >= REFRESH_S:
            self._list(now)
        prev_t, self._prev_t = self._prev_t, now
        dt_ns = int((now - prev_t) * 1e9) if prev_t is not None else 0
        fresh = prev_t is not None and dt_ns > 0
        readings: dict[tuple[int, int], Reading] = {}
        # Which processes had a thread running much of the interval (the GIL's possible holders).
        ran: dict[int, list[int]] = {}
        holding = GIL_SIBLING * dt_ns
        for ident, task in list(self._tasks.items()):
            sched = task.files.sched()
            last = task.last
            moved = last is None or sched is None or sched[0] != last.cpu_ns
            state = task.files.state(core=moved) if sched is not None else None
            if sched is None or state is None:
                task.files.close()
                del self._tasks[ident]
                continue
            readings[ident] = Reading(sched[0], sched[1], state[0], state[1], None, sched[2])
            if last is not None and sched[0] - last.cpu_ns >= holding:
                ran.setdefault(ident[0], []).append(ident[1])
        has_gil = self._has_gil() is not False
        blind = False
        slices: dict[Key, Slice] = {}
        window = self._window
        for (pid, tid), cur in list(readings.items()):
            task = self._tasks[(pid, tid)]
            holders = ran.get(pid, ())
            sibling = any(t != tid for t in holders)
            # Where it sleeps matters for a GIL wait, and always for the loop (freeze causes).
            ask = (sibling and has_gil) or (pid == self._root and tid == self._loop)
            if ask and cur.state in (b"S", b"D"):
                last = task.last
                # Not given a CPU since the last reading: still in the same sleep.
                same = (last is not None and last.futex is not None and last.turns == cur.turns
                        and last.state == cur.state)
                futex = last.futex if same and last is not None else task.files.in_futex(
                    self._futex_nr)
                # Neither wchan nor the syscall file shows where it sleeps.
                blind = blind or (futex is None and task.files.fds.get("syscall") == -1)
                cur = readings[(pid, tid)] = Reading(cur.cpu_ns, cur.delay_ns, cur.state,
                                                     cur.core, futex, cur.turns)
            last, task.last = task.last, cur
            base = last if last is not None else (
                Reading(0, 0, b"", -1) if task.newborn else None)
            info = self._infos.get(task.row)
            total = self._totals.get(task.row)
            if total is None and info is not None:
                total = self._totals[task.row] = RowTotal(info.label, info.role)
            if base is None or total is None:
                continue
            total.cpu_ns += max(0, cur.cpu_ns - base.cpu_ns)
            total.delay_ns += max(0, cur.delay_ns - base.delay_ns)
            if last is None or not fresh:
                continue  # its first interval began before it was seen
            if task.row not in slices:
                total.seen_ns += dt_ns
            s = slice_of(last, cur, dt_ns, sibling_ran=sibling, has_gil=has_gil)
            if task.row[0] == "process" or (info is not None and info.role in WORKER_ROLES):
                window[task.row] = window.get(task.row, 0) + cur.cpu_ns - last.cpu_ns
            slices[task.row] = s if task.row[0] == "thread" else _merge(slices.get(task.row), s)
        if fresh:
            self._window_ns += dt_ns
            if self._window_ns >= WINDOW_S * 1e9:
                self._judge()
            if blind:
                for key in slices:
                    info = self._infos[key]
                    if key[0] == "thread" and not info.note:
                        info.note = "futex waits not shown: GIL waits cannot be told"
            self.store.append(now - dt_ns / 1e9, now, slices, self._infos)
            if self.tap is not None:
                self.tap.add(now - dt_ns / 1e9, now, slices, self._infos)
        self._forget_totals()
        if self.listeners and self._root:
            mine = {tid: r for (pid, tid), r in readings.items() if pid == self._root}
            for listener in self.listeners:
                listener(now, self._root, mine)

    def _judge(self) -> None:
        """Close the window: was it simultaneous?"""
        if self._window_ns > 0:
            self._sampled_ns += self._window_ns
            if simultaneous(self._window, self._window_ns):
                self._simultaneous_ns += self._window_ns
        self._window_ns = 0
        self._window = {}

    def _forget_totals(self) -> None:
        """Bounded: the sums and names of rows long gone are dropped."""
        if len(self._infos) > 2 * MAX_ROWS:
            keep = {task.row for task in self._tasks.values()} | self.store.rows.keys()
            self._infos = {k: v for k, v in self._infos.items() if k in keep}
        if len(self._totals) > 4 * MAX_ROWS:
            live = {task.row for task in self._tasks.values()}
            for key in [k for k in self._totals if k not in live][: len(self._totals) // 2]:
                del self._totals[key]


def now_or(t: float | None) -> float:
    """A time that may not have been taken yet, as 0."""
    return 0.0 if t is None else t


def _merge(a: Slice | None, b: Slice) -> Slice:
    """A process's slice from its threads': the busiest thread's core, at most one whole."""
    if a is None:
        return b
    run = min(1.0, a.run + b.run)
    delay = min(1.0 - run, a.delay + b.delay)
    return Slice(run, delay, 0.0, a.core if a.run >= b.run else b.core)


def _comm(pid: int, tid: int) -> str:
    raw = procfs.read(f"/proc/{pid}/task/{tid}/comm")
    return raw.decode(errors="replace").strip() if raw else ""


#: multiprocessing's helper processes, told by their command line (every one is "python").
HELPERS = (("multiprocessing.resource_tracker", "resource tracker"),
           ("multiprocessing.forkserver", "forkserver"),
           ("--multiprocessing-fork", "spawned worker"))


def _process_label(pid: int) -> str:
    """A child process's row name: what it is where that can be told, and its pid."""
    raw = procfs.read(f"/proc/{pid}/cmdline") or b""
    cmdline = raw.decode(errors="replace")
    what = next((name for marker, name in HELPERS if marker in cmdline), "")
    return f"{what or _comm(pid, pid) or 'process'} {pid}"


def supported() -> bool:
    """Whether this platform shows threads' CPU time and run delay (Linux with schedstats)."""
    files = procfs.TaskFiles(os.getpid(), threading.get_native_id())
    try:
        return files.sched() is not None
    finally:
        files.close()
