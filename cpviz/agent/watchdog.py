"""Blocking detector: a heartbeat on the loop and a watchdog thread that sees it stop.

The heartbeat is a self-rescheduling ``call_later`` callback, not a task, so it costs one timer
per beat and never shows up on the timeline. The watchdog thread checks the last beat every few
milliseconds; once the loop has been silent for longer than the threshold it grabs the loop
thread's *real* stack with ``sys._current_frames()`` and reports an incident while the loop is
still frozen. The first beat after the freeze ends the incident.

The culprit is the innermost frame that belongs to the user's or a workload's code: frames in the
standard library, in site-packages and in cpviz's own engine are skipped, because "blocked in
selectors.py" tells nobody what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import inspect
import linecache
import os
import sys
import sysconfig
import threading
import types
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

from cpviz.engine.clock import Clock
from cpviz.engine.events import (
    Event,
    Frame,
    IncidentEnd,
    IncidentRecord,
    IncidentStart,
    LoopLag,
    ThreadAt,
)

#: Incidents the watchdog remembers for run results (a run asks only about its own interval).
MAX_HISTORY = 1000
#: While the loop stays frozen, its stack is sampled again every this many polls (20 ms at the
#: default 5 ms poll): cheap enough to cost the frozen thread nothing that shows, often enough
#: that a freeze spent mostly in one place is named by that place.
SAMPLE_EVERY = 4
#: Garbage collections remembered, to tell which of them a freeze spanned.
GC_HISTORY = 256

_CPVIZ_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKLOADS_DIR = os.path.join(_CPVIZ_DIR, "workloads")


def _both(path: str) -> set[str]:
    """A path as given and with its links resolved, so either spelling of a file matches."""
    return {os.path.abspath(path), os.path.realpath(path)}


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots |= _both(path)
    for path in sys.path:
        if "site-packages" in path or "dist-packages" in path:
            roots |= _both(path)
    return tuple(sorted(roots, key=len, reverse=True))


_LIBRARY_ROOTS = _library_roots()
_ENGINE_ROOTS = tuple(_both(_CPVIZ_DIR))
_WORKLOAD_ROOTS = tuple(_both(_WORKLOADS_DIR))


@functools.lru_cache(maxsize=4096)
def classify(filename: str) -> Literal["user", "library", "engine"]:
    """Whose code a file is: the user's (or a workload's), a library's, or cpviz's engine.

    No syscalls (``abspath`` only, roots resolved once at import) and memoised: it runs on the
    watchdog thread while a CPU-bound step may hold the GIL, and each GIL-releasing syscall
    would cost up to a switch interval to win the GIL back.
    """
    if filename.startswith("<"):
        # Frozen stdlib modules (<frozen runpy>) and the like.
        return "library" if filename.startswith("<frozen") else "user"
    path = os.path.abspath(filename)
    if any(path.startswith(root + os.sep) for root in _WORKLOAD_ROOTS):
        return "user"
    if any(path.startswith(root + os.sep) for root in _ENGINE_ROOTS):
        return "engine"
    for root in _LIBRARY_ROOTS:
        if path.startswith(root + os.sep):
            return "library"
    return "user"


def _cached_line(filename: str, lineno: int) -> str:
    """A source line only if linecache already holds the file: no disk I/O.

    While a CPU-bound step holds the GIL, every syscall that releases it (stat, open, read)
    costs the watchdog up to one switch interval (5 ms) to get back, so reading a dozen source
    files to decorate a stack could delay the report by hundreds of milliseconds.
    """
    entry = linecache.cache.get(filename)
    if entry is None or len(entry) < 3:
        return ""
    lines = entry[2]
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def call_text(frame: FrameType) -> str | None:
    """The text of the call expression ``frame`` is executing, e.g. ``time.sleep(0.3)``."""
    code = frame.f_code
    index = frame.f_lasti // 2
    try:
        positions = list(code.co_positions())
        line, end_line, col, end_col = positions[index]
    except (IndexError, ValueError):
        return None
    if line is None or col is None or end_col is None or end_line is None:
        return None
    lines = [linecache.getline(code.co_filename, n) for n in range(line, end_line + 1)]
    if not lines or not lines[0]:
        return None
    if len(lines) == 1:
        text = lines[0][col:end_col]
    else:
        text = lines[0][col:] + "".join(lines[1:-1]) + lines[-1][:end_col]
    text = " ".join(text.split())
    return text or None


def _callee(call_text: str | None) -> str | None:
    """``time.sleep(0.3)`` → ``time.sleep``; None when the text is not a call."""
    if not call_text or "(" not in call_text:
        return None
    head = call_text.split("(", 1)[0].strip()
    if head.startswith("await "):
        head = head[len("await ") :].strip()
    return head or None


#: Where C types live as people know them: ``_thread.lock`` is what ``threading.Lock()`` makes.
_ALIASES = {
    "_thread.lock": "threading.Lock",
    "_thread.RLock": "threading.RLock",
    "_socket.socket": "socket.socket",
    "_queue.SimpleQueue": "queue.SimpleQueue",
    "posix": "os",
    "nt": "os",
    "_io": "io",
    "_ssl": "ssl",
    "_sqlite3": "sqlite3",
}


def _known_as(module: str, qualname: str = "") -> str:
    full = f"{module}.{qualname}" if qualname else module
    if full in _ALIASES:
        return _ALIASES[full]
    if qualname:
        return f"{_ALIASES.get(module, module)}.{qualname}"
    return _ALIASES.get(module, module)


def _from_library(obj: object) -> bool:
    """Whether ``obj`` comes from the standard library, a C extension or an installed package
    (named by its type), rather than from the user's own modules (named as written)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    return path is None or classify(path) == "library"


def qualify(frame: FrameType, callee: str) -> str:
    """``a.recv`` → ``socket.socket.recv``: the call named by what it is, not by its variable.

    Only plain dictionary lookups and ``inspect.getattr_static``: nothing in the frozen
    program runs (no property, no ``__getattr__``). Falls back to the text as written.
    """
    parts = callee.split(".")
    if not all(part.isidentifier() for part in parts):
        return callee
    try:
        scope = frame.f_locals
        if parts[0] in scope:
            obj = scope[parts[0]]
        elif parts[0] in frame.f_globals:
            obj = frame.f_globals[parts[0]]
        else:
            obj = frame.f_builtins[parts[0]]
        root = obj
        owner: object = None
        for part in parts[1:]:
            owner, obj = obj, inspect.getattr_static(obj, part)
    except Exception:  # not resolvable without running code: keep the words as written
        return callee
    name = parts[-1]
    if isinstance(root, types.ModuleType) and len(parts) > 1 and isinstance(
        owner, types.ModuleType
    ) and not root.__name__.startswith("_") and _from_library(root):
        # Reached through a public module (``hashlib.pbkdf2_hmac``, ``np.dot``): that is the
        # name people know it by, whatever private module defines it.
        return ".".join((root.__name__, *parts[1:]))
    if owner is None or isinstance(owner, types.ModuleType):
        # A function or class reached by name or through its module: its home module.
        home = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if home and qualname and _from_library(obj):
            return _known_as(home, qualname)
        return callee
    cls = owner if isinstance(owner, type) else type(owner)
    for base in cls.__mro__:
        if name in vars(base):
            if not _from_library(base):
                return callee
            return f"{_known_as(base.__module__, base.__qualname__)}.{name}"
    return callee


def capture_stack(
    frame: FrameType | None, *, name_calls: bool = False
) -> tuple[tuple[Frame, ...], Frame | None, str | None]:
    """Turn a live frame into (stack outermost first, culprit, blocking call).

    With ``name_calls`` the call is named by what it is (:func:`qualify`); without, as written
    (the no-progress detector reads the lock's variable name out of it).
    """
    raw: list[FrameType] = []
    while frame is not None:
        raw.append(frame)
        frame = frame.f_back
    raw.reverse()
    return describe_frames(raw, name_calls=name_calls)


def describe_frames(
    raw: Sequence[FrameType], *, name_calls: bool = False
) -> tuple[tuple[Frame, ...], Frame | None, str | None]:
    """(stack, culprit, blocking call) for frames given outermost first.

    Shared by the watchdog (a thread's stack, unwound through ``f_back``) and the progress
    detector (a suspended task's coroutine chain, which has no ``f_back`` links).
    """
    origins = [classify(f.f_code.co_filename) for f in raw]
    culprit_index = next(
        (i for i in range(len(raw) - 1, -1, -1) if origins[i] == "user"), None
    )
    if culprit_index is not None:
        # The one file worth reading from disk: the culprit's, for its line and its call.
        code = raw[culprit_index].f_code
        linecache.getline(code.co_filename, raw[culprit_index].f_lineno or 0)
    stack = tuple(
        Frame(
            file=f.f_code.co_filename,
            line=f.f_lineno or 0,
            function=f.f_code.co_name,
            code=_cached_line(f.f_code.co_filename, f.f_lineno or 0),
            origin=origin,
        )
        for f, origin in zip(raw, origins, strict=True)
    )
    if culprit_index is None:
        return stack, None, None
    culprit = stack[culprit_index]
    call = _callee(call_text(raw[culprit_index]))
    if call is not None and name_calls:
        call = qualify(raw[culprit_index], call)
    if culprit_index == len(stack) - 1 and call is None:
        # The innermost frame is the user's own and it is not inside a call: pure Python work.
        call = "CPU-bound Python code"
    return stack, culprit, call


def is_probe(thread: threading.Thread) -> bool:
    """cpviz's own threads in the observed process (watchdog, streamer, channel reader), whose
    stacks say nothing about the user's program. Pool threads ("cpviz worker") run workloads."""
    return thread.name.startswith("cpviz-")


def _current_tasks() -> dict[asyncio.AbstractEventLoop, asyncio.Task[object]]:
    """asyncio's loop → running-task map, read from the watchdog thread.

    ``asyncio.current_task(loop)`` reads the same map; reading it from another thread is a plain
    dict lookup under the GIL.
    """
    return getattr(asyncio.tasks, "_current_tasks", {})


@dataclass
class _Open:
    incident_id: int
    since: float
    start: IncidentStart
    #: Culprits seen while frozen: (file, line, function) -> [count, frame, blocking call].
    tally: dict[tuple[str, int, str], list[Any]] = field(default_factory=dict)
    samples: int = 0

    def count(self, culprit: Frame | None, call: str | None) -> None:
        self.samples += 1
        if culprit is None:
            return
        key = (culprit.file, culprit.line, culprit.function)
        seen = self.tally.get(key)
        if seen is None:
            self.tally[key] = [1, culprit, call]
        else:
            seen[0] += 1

    def verdict(self) -> tuple[Frame, str | None] | None:
        """The culprit seen most often, if it is not the one the start named."""
        if not self.tally:
            return None
        count, frame, call = max(self.tally.values(), key=lambda seen: seen[0])
        first = self.start.culprit
        if first is not None and (frame.file, frame.line, frame.function) == (
            first.file, first.line, first.function
        ):
            return None
        first_count = 0
        if first is not None:
            first_count = self.tally.get((first.file, first.line, first.function), [0])[0]
        return (frame, call) if count > first_count else None


class Watchdog:
    """Watches one asyncio loop for freezes longer than ``threshold_s``.

    ``emit`` receives every event; it is called from the watchdog thread (incident start) and from
    the loop thread (incident end, lag), so it must be thread-safe (``EventStream.put`` is).

    The decisions live in :meth:`beat` (the loop turned at ``now``) and :meth:`poll` (the
    watchdog looks at ``now``); the heartbeat callback and the thread only feed them the clock's
    time, so a test drives both with a manual clock and no threads. ``sleep`` is what the thread
    waits ``poll_s`` with.
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        clock: Clock,
        threshold_s: float = 0.1,
        beat_s: float = 0.01,
        poll_s: float = 0.005,
        lag_report_s: float = 0.1,
        sleep: Callable[[float], None] | None = None,
        probe: Callable[[threading.Thread], bool] = is_probe,
    ) -> None:
        if threshold_s <= 0:
            raise ValueError(f"threshold must be positive, got {threshold_s}")
        self._emit = emit
        self.clock = clock
        self.threshold_s = threshold_s
        self.beat_s = beat_s
        self.poll_s = poll_s
        self.lag_report_s = lag_report_s
        #: How the thread waits between looks; by default on its stop event, so detaching
        #: ends it at once instead of after its nap.
        self._sleep = sleep
        self._probe = probe
        #: Garbage collections seen: (start, end, generation, collected), session clock.
        self._gcs: deque[tuple[float, float, int, int]] = deque(maxlen=GC_HISTORY)
        self._gc_started = 0.0
        #: Polls since the open incident was seen, so its stack is sampled every SAMPLE_EVERY.
        self._polls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._last_beat = 0.0
        self._expected = 0.0
        self._worst_lag = 0.0
        self._last_lag_report = 0.0
        self._open: _Open | None = None
        self._lock = threading.Lock()
        self._next_id = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: Every incident so far, finished ones with their durations (session-clock times).
        #: Keyed by incident id, oldest first; the oldest are forgotten past ``MAX_HISTORY``.
        self.history: dict[int, tuple[IncidentStart, float | None]] = {}
        #: Beats that ran noticeably late, as (time, lag): enough to answer "worst lag in a run".
        self._late: deque[tuple[float, float]] = deque(maxlen=20_000)
        #: Seconds of garbage collection in each finished incident, by id.
        self._gc_of: dict[int, float] = {}
        #: A freeze a beat proved but nobody saw while it lasted: (last beat before, the beat).
        self._missed: tuple[float, float] | None = None
        #: The last beat before the newest freeze the watchdog saw itself.
        self._seen_since: float | None = None

    # -- loop side ------------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the heartbeat on ``loop`` and the watchdog thread. Call from the loop's thread."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.arm(self.clock.now())
        self._timer = loop.call_later(self.beat_s, self._beat)
        self._stop.clear()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        self._thread = threading.Thread(target=self._watch, name="cpviz-watchdog", daemon=True)
        self._thread.start()

    def detach(self) -> None:
        """Stop watching; safe to call from any thread, and more than once."""
        self._stop.set()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        timer, self._timer = self._timer, None
        if timer is not None and self._loop is not None:
            if self._loop_thread == threading.get_ident():
                timer.cancel()
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(timer.cancel)
        thread = self._thread
        if (thread is not None and thread is not threading.current_thread()
                and self._loop_thread != threading.get_ident()):
            # (From the loop's own thread, never wait: that is the watched program's time. The
            # thread sees the stop event and ends by itself.)
            thread.join(timeout=1.0)
        self._thread = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc.callbacks: remember when each collection ran (a pause the loop cannot avoid)."""
        if phase == "start":
            self._gc_started = self.clock.now()
        else:
            self._gcs.append((self._gc_started, self.clock.now(), info.get("generation", -1),
                              info.get("collected", 0)))

    def gc_between(self, t0: float, t1: float) -> tuple[float, int, int]:
        """(seconds, oldest generation or -1, objects collected) of collections in [t0, t1]."""
        seconds, generation, collected = 0.0, -1, 0
        for start, end, gen, count in list(self._gcs):
            overlap = min(end, t1) - max(start, t0)
            if overlap > 0:
                seconds += overlap
                generation = max(generation, gen)
                collected += count
        return seconds, generation, collected

    def pace(self, beat_s: float) -> None:
        """Beat every ``beat_s`` from now on (loop thread); a slower beat still pending is
        brought forward, so the first freeze after speeding up is timed as closely as the rest."""
        self.beat_s = beat_s
        timer, loop = self._timer, self._loop
        if timer is None or loop is None or self._stop.is_set():
            return
        if timer.when() - loop.time() > beat_s:
            timer.cancel()
            self._expected = self.clock.now() + beat_s
            self._timer = loop.call_later(beat_s, self._beat)

    def arm(self, now: float) -> None:
        """Count ``now`` as a beat on time: silence and lag are measured from here."""
        self._last_beat = now
        self._expected = now + self.beat_s
        self._last_lag_report = now

    def _beat(self) -> None:
        """The heartbeat callback: one beat at the clock's time, then the next one scheduled."""
        self.beat(self.clock.now())
        if not self._stop.is_set() and self._loop is not None:
            self._timer = self._loop.call_later(self.beat_s, self._beat)

    def beat(self, now: float) -> None:
        """The loop turned at ``now``: record its lag, end an open incident, report lag.

        The next beat is expected ``beat_s`` later; how late it comes is the loop's lag.
        """
        lag = max(0.0, now - self._expected)
        last, self._last_beat = self._last_beat, now
        if lag > self._worst_lag:
            self._worst_lag = lag
        if lag > 0.001:
            self._late.append((now, lag))
        with self._lock:
            opened, self._open = self._open, None
            if opened is None and now - last > self.threshold_s:
                # Frozen past the threshold and not (yet) seen: the watchdog thread may not
                # have been able to run either (a real-time hog on the core both share, a
                # stopped process). The beat proves the freeze; the next poll reports it.
                self._missed = (last, now)
        if opened is not None:
            self._close(opened, now, now - opened.since)
        if now - self._last_lag_report >= self.lag_report_s:
            self._emit(LoopLag(now, self._worst_lag))
            self._worst_lag = 0.0
            self._last_lag_report = now
        self._expected = now + self.beat_s

    def _record(self, start: IncidentStart) -> IncidentStart:
        """Take the next id for ``start`` and remember it (under the lock)."""
        self._next_id += 1
        self.history[start.incident_id] = (start, None)
        if len(self.history) > MAX_HISTORY:
            oldest = next(iter(self.history))
            del self.history[oldest]
            self._gc_of.pop(oldest, None)
        return start

    def _close(self, opened: _Open, now: float, duration: float) -> None:
        """End an incident, naming the culprit the freeze spent most of its samples in."""
        verdict = opened.verdict()
        culprit, call = verdict if verdict is not None else (None, None)
        gc_s, gc_generation, gc_collected = self.gc_between(opened.since, now)
        self._emit(IncidentEnd(now, opened.incident_id, duration, culprit, call,
                               opened.samples, gc_s, gc_generation, gc_collected))
        entry = self.history.get(opened.incident_id)
        if entry is not None:
            start = entry[0]
            if verdict is not None:
                start = dataclasses.replace(start, culprit=culprit, blocking_call=call)
            self.history[opened.incident_id] = (start, duration)
            self._gc_of[opened.incident_id] = gc_s

    # -- watchdog thread ------------------------------------------------------------------------

    def _is_open(self) -> bool:
        return self._open is not None

    def _capture(self) -> tuple[tuple[Frame, ...], Frame | None, str | None]:
        """The loop thread's stack as it is right now: (stack, culprit, blocking call)."""
        frame = sys._current_frames().get(self._loop_thread or -1)
        try:
            return capture_stack(frame, name_calls=True)
        finally:
            del frame

    def _threads(self) -> tuple[ThreadAt, ...]:
        """The program's other threads and where each is (cpviz's probes left out): when the
        loop starves of the GIL, these are the threads holding it."""
        frames = sys._current_frames()
        out: list[ThreadAt] = []
        try:
            for thread in threading.enumerate():
                ident = thread.ident
                if ident is None or ident == self._loop_thread or self._probe(thread):
                    continue
                _stack, culprit, call = capture_stack(frames.get(ident), name_calls=True)
                out.append(ThreadAt(thread.name, thread.native_id or 0, culprit, call))
        finally:
            del frames
        return tuple(out)

    def _running_task_id(self) -> int:
        """The task whose step holds the loop, or 0 outside any task (or with no loop)."""
        task = _current_tasks().get(self._loop) if self._loop is not None else None
        return id(task) if task is not None else 0

    def _sample(self) -> None:
        """One more look at the frozen loop thread's stack, tallied for the incident's end."""
        _stack, culprit, call = self._capture()
        with self._lock:
            opened = self._open
            if opened is not None:
                opened.count(culprit, call)

    def _watch(self) -> None:
        """The watchdog thread: let :meth:`poll` look at the clock's time when it matters.

        While the loop turns there is nothing to look at before the last beat is a threshold
        old, so the thread sleeps until then (about ten wake-ups a second, not two hundred);
        while a freeze is open it looks every ``poll_s`` to sample the stack.
        """
        clock, stop = self.clock, self._stop
        sleep = self._sleep or stop.wait
        while not stop.is_set():
            wait = self.poll_s
            if self._open is None:
                due = self._last_beat + self.threshold_s - clock.now()
                wait = max(self.poll_s, due + self.poll_s / 2)
            sleep(wait)
            if stop.is_set():
                return  # the loop stopped running: a silence now is no freeze
            self.poll(clock.now())

    def poll(self, now: float) -> IncidentStart | None:
        """One look at ``now``: open an incident once the last beat is older than the threshold.

        While an incident is open its stack is sampled every ``SAMPLE_EVERY`` polls instead.
        Returns the incident this poll reported, if any. If the loop turned while the stack was
        being read, the freeze was real and lasted until that beat: it is reported and closed
        at once (at the clock's time after the capture).
        """
        # Read after the caller's ``now``: a beat in between only makes the silence look shorter.
        last = self._last_beat
        with self._lock:
            missed, self._missed = self._missed, None
            if missed is not None and (self._open is not None or missed[0] == self._seen_since):
                missed = None  # seen while it lasted: reported already, with its stack
            start = None if missed is None else self._record(
                # No stack of the loop was seen; where the other threads are now is the best
                # word on who held the GIL or the cores meanwhile.
                IncidentStart(now, self._next_id, missed[0], None, None, (), 0, self._threads())
            )
        if missed is not None and start is not None:
            # A freeze that ended before anyone could look: reported late, with no stack.
            self._emit(start)
            self._close(_Open(start.incident_id, missed[0], start), now, missed[1] - missed[0])
            return start
        if self._open is not None:
            self._polls += 1
            if self._polls % SAMPLE_EVERY == 0:
                self._sample()
            return None
        if now - last <= self.threshold_s:
            return None
        self._polls = 0
        # ``now`` is the moment the freeze was seen, before the (possibly GIL-starved) capture.
        stack, culprit, call = self._capture()
        task_id = self._running_task_id()
        threads = self._threads()
        with self._lock:
            if self._is_open():  # the loop thread may have changed it meanwhile
                return None
            self._seen_since = last
            start = self._record(
                IncidentStart(now, self._next_id, last, culprit, call, stack, task_id, threads)
            )
            turned = self._last_beat != last
            opened = _Open(start.incident_id, last, start)
            opened.count(culprit, call)
            if not turned:
                self._open = opened
        self._emit(start)
        if turned:
            # The loop came back while the stack was being read: the freeze was real and lasted
            # until that beat, so it is reported, and closed, all the same.
            self._close(opened, self.clock.now(), self._last_beat - last)
        return start

    # -- results --------------------------------------------------------------------------------

    def max_lag_between(self, t0: float, t1: float) -> float:
        """Worst heartbeat lag seen in [t0, t1]; a freeze still under way counts as lag so far."""
        worst = max((lag for t, lag in list(self._late) if t0 <= t <= t1), default=0.0)
        opened = self._open
        if opened is not None:
            worst = max(worst, min(t1, self.clock.now()) - opened.since)
        return worst

    def incidents_between(self, t0: float, t1: float) -> tuple[IncidentRecord, ...]:
        """Freezes that overlapped [t0, t1] (a run's interval), start times relative to ``t0``.

        Overlap rather than "began inside": the start is the last heartbeat seen, up to one beat
        before the freeze really began, so a freeze caused by a run's first step can appear to
        start a few milliseconds before the run did.
        """
        out: list[IncidentRecord] = []
        for start, duration in list(self.history.values()):
            if duration is None:
                duration = max(0.0, self.clock.now() - start.since)
            if start.since > t1 or start.since + duration < t0:
                continue
            culprit = start.culprit
            out.append(
                IncidentRecord(
                    start_s=max(0.0, start.since - t0),
                    duration_s=duration,
                    file=culprit.file if culprit else None,
                    line=culprit.line if culprit else None,
                    function=culprit.function if culprit else None,
                    code=culprit.code if culprit else None,
                    blocking_call=start.blocking_call,
                    incident_id=start.incident_id,
                    gc_s=self._gc_of.get(start.incident_id, 0.0),
                )
            )
        return tuple(out)
