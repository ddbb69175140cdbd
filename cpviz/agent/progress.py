"""No-progress detector: a run whose tasks stopped moving and that nothing is going to wake.

A deadlock does not crash and does not burn CPU: the timeline just goes quiet. Quiet alone proves
nothing (a thousand tasks sleeping 10 s are quiet too), so the detector raises a stall only when,
for longer than ``stall_s``, a run has made **no progress** and has **no wake-up coming**, and at
least one of its tasks or threads is stuck on a synchronisation primitive.

The rule, checked every ``check_s`` on the loop thread by a self-rescheduling ``call_later``
callback (not a task, so it never shows up as a step itself):

* **Progress** is a step of one of the run's tasks: the tracer's ring records since the last check
  say which tasks ran (the tracer's ``run_of`` tells their runs). If the ring overflowed or dropped
  records, every run counts as having progressed (the detector would rather be late than wrong).
* A run that did not step is examined task by task. A pending task is a **wake-up coming** when
  it is ready to run (no future awaited, or the future is already done); when a timer on the loop
  will resolve its future (``asyncio.sleep``, ``wait_for``; a timer at infinity, i.e.
  ``sleep_forever``, is waiting to be cancelled and counts as neither); when its future belongs
  to an anyio worker thread that is busy (anything but blocked acquiring a lock or in an untimed
  wait); and when it waits on anything the detector cannot name (sockets, process pools, a bare
  future someone else will set): unknown waits count as wake-ups, so I/O never looks stuck.
  Cancel-scope deadlines (``move_on_after``) do not count: they end the wait, they do not let
  the work go on.
* A pending task is **stuck** when it waits on an asyncio or anyio primitive (Lock, Event,
  Condition, Semaphore, CapacityLimiter, Queue, memory object stream) called directly from
  user code, or on a worker thread that is blocked acquiring a lock. Tasks that only join others
  (task-group exit, ``gather``, awaiting a task) count as neither.
* Any wake-up coming moves the run's "last alive" time to now; with none and at least one stuck
  waiter, once ``now - last alive`` exceeds ``stall_s`` a :class:`StallStart` names the waiters.
  The next step of any of the run's tasks, or the run's end, emits the :class:`StallEnd`.

A waiter names the innermost user frame it waits at, the variable the primitive is bound to in
that frame (``lock_b``), and who holds it when the primitive records an owner (anyio's Lock does,
asyncio's and ``threading.Lock`` do not). Threads are read with ``sys._current_frames()``.

Limits, knowingly accepted: a thread is judged by where it is at each check (busy once in a
while is enough to count as alive); a primitive that a thread cpviz did not start will set
(``call_soon_threadsafe`` from a plain ``threading.Thread``) looks stuck while that thread works.
"""

from __future__ import annotations

import asyncio
import dis
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cpviz.agent.tracer import Tracer
from cpviz.agent.watchdog import call_text, capture_stack, classify, describe_frames
from cpviz.engine.clock import Clock
from cpviz.engine.events import Event, StallEnd, StallStart, Waiter

#: Objects whose waits only another task (or thread) of the program can end.
PRIMITIVES: tuple[type, ...] = (
    asyncio.Lock,
    asyncio.Event,
    asyncio.Condition,
    asyncio.Semaphore,
    asyncio.Barrier,
    asyncio.Queue,
    anyio.Lock,
    anyio.Event,
    anyio.Condition,
    anyio.Semaphore,
    anyio.CapacityLimiter,
    MemoryObjectReceiveStream,
    MemoryObjectSendStream,
)
_JOINERS: tuple[type, ...] = (anyio.abc.TaskGroup, asyncio.TaskGroup)
_JOIN_FUNCTIONS = frozenset({"wait", "_wait", "gather", "shield", "as_completed"})
_TASKS_FILE = os.path.abspath(asyncio.tasks.__file__)
#: Library frames (threading, queue) that wait for another thread; untimed means blocked.
_THREAD_WAITS = frozenset({"wait", "acquire", "get", "put", "join", "_wait_for_tstate_lock"})
_BEFORE_WITH = dis.opmap.get("BEFORE_WITH", -1)

Verdict = Literal["wake", "stuck", "neither"]


def describe(waiter: Waiter) -> str:
    """One line for a waiter: ``left waits on lock_b (held by right) at deadlock.py:42``."""
    who = waiter.name if waiter.kind == "task" else f"{waiter.name} (thread)"
    text = f"{who} waits on {waiter.waits_on or 'something'}"
    if waiter.held_by:
        text += f" (held by {waiter.held_by})"
    if waiter.frame is not None:
        text += f" at {os.path.basename(waiter.frame.file)}:{waiter.frame.line}"
    return text


def coroutine_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """A suspended task's frames, outermost first, following each coroutine's ``cr_await``."""
    out: list[FrameType] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        out.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return out


def _locals(frame: FrameType) -> dict[str, Any]:
    try:
        return dict(frame.f_locals)
    except Exception:  # a frame can refuse (e.g. mid-teardown): then it names nothing
        return {}


def _name_in(frame: FrameType | None, targets: list[Any]) -> str | None:
    """The name ``frame`` knows one of ``targets`` by: a local, or an attribute of ``self``."""
    if frame is None:
        return None
    names = _locals(frame)
    for target in targets:
        for name, value in names.items():
            if value is target:
                return name
    owner = names.get("self")
    attrs = getattr(owner, "__dict__", None)
    if isinstance(attrs, dict):
        for target in targets:
            for name, value in attrs.items():
                if value is target:
                    return f"self.{name}"
    return None


def _holder(primitive: Any) -> str | None:
    """Who holds ``primitive``, when it records it (anyio's Lock, and a Condition's lock)."""
    for obj in (primitive, getattr(primitive, "_lock", None)):
        owner = getattr(obj, "_owner_task", None)
        if isinstance(owner, asyncio.Task):
            return owner.get_name()
    return None


def thread_wait(thread: threading.Thread, frame: FrameType | None) -> Waiter | None:
    """A thread blocked on a lock or an untimed wait, as a waiter; None when it is busy."""
    if frame is None:
        return None
    _stack, culprit, call = capture_stack(frame)
    waits_on: str | None = None
    if classify(frame.f_code.co_filename) == "user":
        # lock.acquire is C code, so the user's frame is the innermost one while it blocks.
        if call is not None and call.endswith(".acquire"):
            waits_on = call[: -len(".acquire")]
        elif frame.f_code.co_code[frame.f_lasti] == _BEFORE_WITH:
            waits_on = call_text(frame)  # ``with lock_b:`` blocks in the lock's C __enter__
    else:
        f: FrameType | None = frame
        while f is not None and classify(f.f_code.co_filename) == "library":
            module = os.path.basename(f.f_code.co_filename)
            if module in ("threading.py", "queue.py") and f.f_code.co_name in _THREAD_WAITS:
                names = _locals(f)
                if "timeout" in names and names["timeout"] in (None, -1):
                    waits_on = (call or "").rsplit(".", 1)[0] or f.f_code.co_name
                    break
            f = f.f_back
    if waits_on is None:
        return None
    return Waiter("thread", thread.name, culprit, waits_on, None)


@dataclass
class _Watch:
    run_id: int
    #: Last time the run was seen progressing, or with a wake-up coming (session clock).
    alive: float
    stall_id: int | None = None
    #: The task that last showed a wake-up coming: checked first next time, so a run of
    #: ten thousand sleepers costs one look per check, not ten thousand.
    witness: asyncio.Task[Any] | None = None
    #: (detection - last alive, waiters) of the run's first stall.
    first: tuple[float, tuple[Waiter, ...]] | None = None


class _Scene:
    """What one check learns about the loop, gathered only when a quiet run needs it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, run_of: dict[int, int]) -> None:
        self.loop = loop
        self._run_of = run_of
        self._by_run: dict[int, list[asyncio.Task[Any]]] | None = None
        self._timers: dict[int, float] | None = None
        self._workers: dict[int, tuple[threading.Thread, FrameType | None]] | None = None

    def tasks(self, run_id: int) -> list[asyncio.Task[Any]]:
        if self._by_run is None:
            by_run: dict[int, list[asyncio.Task[Any]]] = {}
            run_of = self._run_of
            for task in asyncio.all_tasks(self.loop):
                by_run.setdefault(run_of.get(id(task), 0), []).append(task)
            self._by_run = by_run
        return self._by_run.get(run_id, [])

    def timer_for(self, future: object) -> float | None:
        """When a scheduled timer resolves ``future`` (``asyncio.sleep``), or None."""
        if self._timers is None:
            timers: dict[int, float] = {}
            for handle in list(getattr(self.loop, "_scheduled", ())):
                if handle.cancelled():
                    continue
                for arg in getattr(handle, "_args", None) or ():
                    if isinstance(arg, asyncio.Future):
                        timers[id(arg)] = handle.when()
            self._timers = timers
        return self._timers.get(id(future))

    def worker_for(self, future: object) -> tuple[threading.Thread, FrameType | None] | None:
        """The worker thread computing ``future`` (anyio's ``to_thread``), with its frame."""
        if self._workers is None:
            workers: dict[int, tuple[threading.Thread, FrameType | None]] = {}
            frames = sys._current_frames()
            for thread in threading.enumerate():
                top = frames.get(thread.ident or -1)
                f = top
                while f is not None:
                    # anyio's WorkerThread.run keeps the item it is working on in locals.
                    if f.f_code.co_name == "run" and classify(f.f_code.co_filename) == "library":
                        names = _locals(f)
                        fut = names.get("future")
                        if names.get("self") is thread and isinstance(fut, asyncio.Future):
                            workers[id(fut)] = (thread, top)
                        break
                    f = f.f_back
            del frames
            self._workers = workers
        return self._workers.get(id(future))


def _is_tasks_function(frame: FrameType, *names: str) -> bool:
    """Whether ``frame`` runs one of asyncio's own task helpers (``sleep``, ``wait``...)."""
    code = frame.f_code
    return code.co_name in names and os.path.abspath(code.co_filename) == _TASKS_FILE


def classify_task(task: asyncio.Task[Any], scene: _Scene) -> tuple[Verdict, Waiter | None]:
    """Whether a pending task has a wake-up coming, is stuck (and on what), or only joins."""
    if task.done():
        return "neither", None
    fut = getattr(task, "_fut_waiter", None)
    if fut is None or fut.done():
        return "wake", None  # scheduled to run, or about to be
    if isinstance(fut, asyncio.Task) or type(fut).__name__ == "_GatheringFuture":
        return "neither", None  # waits for other tasks, which are examined themselves
    frames = coroutine_frames(task)
    if frames and _is_tasks_function(frames[-1], "sleep"):
        # asyncio.sleep keeps its delay in a local: no need to search the loop's timers.
        delay = _locals(frames[-1]).get("delay")
        finite = isinstance(delay, int | float) and math.isfinite(delay)
        return ("wake" if finite else "neither"), None
    when = scene.timer_for(fut)
    if when is not None:
        return ("wake" if math.isfinite(when) else "neither"), None
    worker = scene.worker_for(fut)
    if worker is not None:
        waiter = thread_wait(*worker)
        return ("stuck", waiter) if waiter is not None else ("wake", None)
    tail: list[FrameType] = []
    for frame in reversed(frames):
        if classify(frame.f_code.co_filename) != "library":
            break
        tail.append(frame)
    if not tail:
        return "wake", None  # a bare future someone outside the loop may set
    selves: list[Any] = []
    for frame in tail:
        if _is_tasks_function(frame, *_JOIN_FUNCTIONS):
            return "neither", None
        obj = _locals(frame).get("self")
        if isinstance(obj, _JOINERS):
            return "neither", None
        selves.append(obj)
    if not all(isinstance(obj, PRIMITIVES) for obj in selves):
        return "wake", None  # sockets, streams, pools: an outside event may end the wait
    outward = list(reversed(selves))  # the primitive user code called first
    user = frames[len(frames) - len(tail) - 1] if len(frames) > len(tail) else None
    _stack, culprit, _call = describe_frames(frames)
    name = _name_in(user, outward) or type(outward[0]).__name__
    return "stuck", Waiter("task", task.get_name(), culprit, name, _holder(outward[0]))


class ProgressDetector:
    """Watches the runs it is told about on one traced loop and raises no-progress stalls.

    ``emit`` is called on the loop thread (default: the tracer's, so stalls stay in order with
    the steps around them). The tracer must be made with ``track_runs=True``.

    The decision lives in :meth:`check` (one look at ``now``); the periodic callback only feeds
    it the clock's time, so a test drives it with a manual clock and an idle loop.
    """

    def __init__(
        self,
        tracer: Tracer,
        clock: Clock,
        stall_s: float = 1.0,
        check_s: float = 0.1,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        if stall_s <= 0:
            raise ValueError(f"stall threshold must be positive, got {stall_s}")
        if tracer.run_of is None:
            raise ValueError("the progress detector needs a Tracer(track_runs=True)")
        self.tracer = tracer
        self.run_of: dict[int, int] = tracer.run_of
        self.clock = clock
        self.stall_s = stall_s
        self.check_s = min(check_s, stall_s / 2)
        self._emit = emit if emit is not None else tracer.emit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watches: dict[int, _Watch] = {}
        self._next_id = 1
        self._seen = 0
        self._drops = 0
        self._checks = 0

    # -- attaching ------------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start checking on ``loop``. Call from the loop's thread, after the tracer attached."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._seen = self.tracer.written
        self._drops = self.tracer.dropped_total
        self._timer = loop.call_later(self.check_s, self._check)

    def detach(self) -> None:
        """Stop checking; safe from any thread and more than once."""
        loop, timer = self._loop, self._timer
        self._loop = self._timer = None
        if loop is None or timer is None or loop.is_closed():
            return
        if self._loop_thread == threading.get_ident():
            timer.cancel()
        else:
            loop.call_soon_threadsafe(timer.cancel)

    # -- runs (loop thread) ---------------------------------------------------------------------

    def watch(self, run_id: int, since: float) -> None:
        """Start watching a run that began at ``since`` (session clock)."""
        self._watches[run_id] = _Watch(run_id, since)

    def unwatch(self, run_id: int, t: float) -> dict[str, Any]:
        """Stop watching a run that ended at ``t`` and close its stall; figures for its result."""
        watch = self._watches.pop(run_id, None)
        if watch is None:
            return {}
        if watch.stall_id is not None:
            self._emit(StallEnd(t, run_id, watch.stall_id))
        if watch.first is None:
            return {}
        detected, waiters = watch.first
        return {
            "stall_detected_s": round(detected, 4),
            "stall_waiters": [describe(w) for w in waiters],
        }

    # -- the check ------------------------------------------------------------------------------

    def _check(self) -> None:
        """The periodic callback: one :meth:`check` at the clock's time, then the next one."""
        loop = self._loop
        if loop is None:
            return
        try:
            self.check(self.clock.now(), loop)
        finally:
            if self._loop is loop:
                self._timer = loop.call_later(self.check_s, self._check)

    def check(self, now: float, loop: asyncio.AbstractEventLoop) -> None:
        """One look at the watched runs at ``now``; loop thread only (or a loop not running).

        A run that stepped since the last check is alive (and its stall ends); a quiet one is
        examined on ``loop``: a wake-up coming keeps it alive, and with none, stuck waiters and
        nothing since ``alive`` for longer than ``stall_s``, a stall opens.
        """
        if self._watches:
            self._scan(now, loop)
        else:  # nothing to watch: only keep up with the ring, so no step looks new later
            self._seen, self._drops = self.tracer.written, self.tracer.dropped_total

    def _stepped(self, now: float) -> dict[int, float]:
        """Watched runs with a step since the last check → end of their latest step."""
        tracer = self.tracer
        written, drops = tracer.written, tracer.dropped_total
        start, self._seen = self._seen, written
        blind = written - start > tracer.capacity or drops != self._drops
        self._drops = drops
        if blind:
            return {run_id: now for run_id in self._watches}
        if written == start or not self._watches:
            return {}
        buf, mask, origin = tracer._buf, tracer.capacity - 1, tracer.origin
        run_of = self.run_of
        lo, hi = start & mask, ((written - 1) & mask) + 1
        spans = [(lo, hi)] if lo < hi else [(lo, tracer.capacity), (0, hi)]
        ids: set[float] = set()
        for a, b in spans:
            ids.update(buf[a * 4 : b * 4 : 4])  # the task-id column, read at C speed
        todo = {run_of.get(int(abs(i)), 0) for i in ids} & self._watches.keys()
        out: dict[int, float] = {}
        n = written - 1
        while todo and n >= start:
            i = (n & mask) << 2
            run_id = run_of.get(int(abs(buf[i])), 0)
            if run_id in todo:
                out[run_id] = buf[i + 3] - origin
                todo.discard(run_id)
            n -= 1
        return out

    def _scan(self, now: float, loop: asyncio.AbstractEventLoop) -> None:
        stepped = self._stepped(now)
        self._checks += 1
        scene = _Scene(loop, self.run_of)
        if self._checks % 20 == 0 and len(self.run_of) > 256:
            self._prune(loop)
        for watch in list(self._watches.values()):
            at = stepped.get(watch.run_id)
            if at is not None:
                watch.alive = max(watch.alive, at)
                if watch.stall_id is not None:
                    self._emit(StallEnd(now, watch.run_id, watch.stall_id))
                    watch.stall_id = None
                continue
            if watch.stall_id is not None:
                continue
            witness = watch.witness
            if witness is not None and classify_task(witness, scene)[0] == "wake":
                watch.alive = now
                continue
            watch.witness, waiters = self._examine(scene.tasks(watch.run_id), scene)
            if watch.witness is not None:
                watch.alive = now
            elif waiters and now - watch.alive > self.stall_s:
                self._open(watch, now, waiters)

    def _examine(
        self, tasks: Iterable[asyncio.Task[Any]], scene: _Scene
    ) -> tuple[asyncio.Task[Any] | None, tuple[Waiter, ...]]:
        """(a task with a wake-up coming, or the stuck waiters); stops at the first wake-up."""
        found: dict[tuple[str, str], Waiter] = {}
        for task in tasks:
            verdict, waiter = classify_task(task, scene)
            if verdict == "wake":
                return task, ()
            if waiter is not None:
                found.setdefault((waiter.kind, waiter.name), waiter)
        return None, tuple(sorted(found.values(), key=lambda w: (w.name, w.kind)))

    def _open(self, watch: _Watch, now: float, waiters: tuple[Waiter, ...]) -> None:
        stall_id = self._next_id
        self._next_id += 1
        watch.stall_id = stall_id
        if watch.first is None:
            watch.first = (now - watch.alive, waiters)
        self._emit(StallStart(now, watch.run_id, stall_id, watch.alive, waiters))

    def _prune(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget finished tasks (the tracer only ever adds)."""
        live = {id(task) for task in asyncio.all_tasks(loop)}
        for task_id in [k for k in self.run_of if k not in live]:
            del self.run_of[task_id]

