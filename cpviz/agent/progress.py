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
  (task-group exit, ``gather``, awaiting a task) count as neither. So does a wait on anything
  but a lock or a semaphore while the loop **listens to the world** (a socket or a pipe of the
  program's is registered on it): a server idles in ``await stop.wait()`` or ``queue.get()``
  until a request or a signal comes, and only a lock waits on a task that holds it.
* A run with stuck waiters and no such wake-up is still alive while a **timer it set** will
  fire (any finite timer made in the run's context, cpviz's own and cancel-scope deadlines
  aside: a ``call_later`` that sets the Event a task waits on is a wake-up nobody awaits).
* ...and while **the program runs where no task shows it**: a Python thread of the observed
  process (the loop thread and cpviz's probe threads aside, see ``lab.thread_roles``) is at
  another spot than at the last check, or a thread or a process below it used at least
  ``CPU_SHARE`` of a check period since it was last read. A plain ``def main()`` waiting in
  ``Pool.map`` looks stuck by its stack, yet its workers compute: that is progress. This is
  read only for such a run, once per check, the cheapest way first (stacks, then a few small
  /proc files, stopping at the first that ran); a deadlock's threads neither move nor use CPU
  (polling a lock with a timeout, far less than the floor).
* ...and while **a thread sleeps on the world outside**: the kernel names its wait and it is no
  futex (locks, queues, events: the program's own threads) but a timer, I/O or a child process
  (``time.sleep``, ``recv``, ``select``, ``subprocess.run`` in a thread that ``main`` joins).
  The standard library's process-pool plumbing is left out: worker processes speak for it.
* Any wake-up coming moves the run's "last alive" time to now; with none and at least one stuck
  waiter, once ``now - last alive`` exceeds ``stall_s`` a :class:`StallStart` names the waiters
  (and, when a thread is among them, the program's other threads blocked in its own code: the
  two threads of a lock-order deadlock behind the worker that joins them). The next step of any
  of the run's tasks, or the run's end, emits the :class:`StallEnd`.

A waiter names the innermost user frame it waits at, the variable the primitive is bound to in
that frame (``lock_b``), and who holds it when the primitive records an owner (anyio's Lock does,
asyncio's and ``threading.Lock`` do not). Threads are read with ``sys._current_frames()``.

Limits, knowingly accepted: a thread is judged by where it is at each check (busy once in a
while is enough to count as alive); the thread and process rules are process-wide (one run's
busy workers, or a thread asleep on a socket, keep another run's deadlock from being called
until they stop); a thread or process working at less than ``CPU_SHARE`` of a core counts as
idle, and one polling with ``time.sleep`` as waking (a spin-wait deadlock is not called).
Where the kernel hides ``wchan`` only the CPU tells; where ``/proc`` is missing, psutil reads
the processes below, and the threads only where it gives their real ids (not on macOS).
"""

from __future__ import annotations

import asyncio
import dis
import functools
import linecache
import math
import os
import sys
import threading
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

from cpviz.agent.program_view import CPU_SHARE, Program, ProgramView
from cpviz.agent.tracer import RUN_ID, Tracer, task_name
from cpviz.agent.watchdog import capture_stack, classify, describe_frames
from cpviz.engine.clock import Clock
from cpviz.engine.events import Event, StallEnd, StallStart, Waiter

#: Primitives only the task holding them lets go of (even while the loop listens to the world).
HELD: tuple[type, ...] = (asyncio.Lock, asyncio.Semaphore)
_ANYIO_WAITS: tuple[type, ...] = ()
_ANYIO_JOINERS: tuple[type, ...] = ()
_ANYIO_DEADLINES: tuple[type, ...] = ()
try:  # the lab has anyio; a program run as it is may be in an interpreter without it
    import anyio
    import anyio.abc
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    HELD += (anyio.Lock, anyio.Semaphore, anyio.CapacityLimiter)
    _ANYIO_WAITS = (anyio.Event, anyio.Condition, MemoryObjectReceiveStream,
                    MemoryObjectSendStream)
    _ANYIO_JOINERS = (anyio.abc.TaskGroup,)
    _ANYIO_DEADLINES = (anyio.CancelScope,)
except ImportError:
    pass

#: Objects whose waits only another task (or thread) of the program can end.
PRIMITIVES: tuple[type, ...] = (
    *HELD,
    asyncio.Event,
    asyncio.Condition,
    asyncio.Barrier,
    asyncio.Queue,
    *_ANYIO_WAITS,
)
_JOINERS: tuple[type, ...] = (*_ANYIO_JOINERS, asyncio.TaskGroup)
_JOIN_FUNCTIONS = frozenset({"wait", "_wait", "gather", "shield", "as_completed"})
_TASKS_FILE = os.path.abspath(asyncio.tasks.__file__)
#: Library frames (threading, queue) that wait for another thread; untimed means blocked.
_THREAD_WAITS = frozenset({"wait", "acquire", "get", "put", "join", "_wait_for_tstate_lock"})
_BEFORE_WITH = dis.opmap.get("BEFORE_WITH", -1)
#: Timers whose callbacks live here are cpviz's own probes (heartbeat, this check, gauges).
_PROBE_MODULES = ("cpviz.agent.", "cpviz.engine.")
#: Timers that end a wait rather than let it go on: ``move_on_after``, ``asyncio.timeout``.
_DEADLINES: tuple[type, ...] = (*_ANYIO_DEADLINES, asyncio.Timeout)

Verdict = Literal["wake", "stuck", "neither"]


def _program_timer(callback: object) -> bool:
    """Whether a timer's callback is the program's own: not a cpviz probe, not a deadline."""
    while isinstance(callback, functools.partial):
        callback = callback.func
    if isinstance(getattr(callback, "__self__", None), _DEADLINES):
        return False
    module = getattr(callback, "__module__", None) or ""
    return not module.startswith(_PROBE_MODULES)


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
            return task_name(owner)
    return None


def with_subject(frame: FrameType) -> str | None:
    """The expression a ``with`` at the frame's current instruction enters: ``lock_b``.

    The instruction just before ``BEFORE_WITH`` computed it, and its source span is exactly the
    expression (the ``with`` instruction itself spans the whole statement, body included).
    """
    previous: dis.Instruction | None = None
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset == frame.f_lasti:
            break
        previous = instruction
    else:
        return None
    where = previous.positions if previous is not None else None
    if where is None or None in (where.lineno, where.end_lineno, where.col_offset,
                                 where.end_col_offset) or where.lineno != where.end_lineno:
        return None
    line = linecache.getline(frame.f_code.co_filename, where.lineno or 0)
    return line[where.col_offset : where.end_col_offset].strip() or None


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
            waits_on = with_subject(frame)  # ``with lock_b:`` blocks in the lock's C __enter__
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
        #: Runs with a timer of their own pending (see :func:`_program_timer`).
        self._timed_runs: set[int] = set()
        self._workers: dict[int, tuple[threading.Thread, FrameType | None]] | None = None
        self._listens: bool | None = None

    def listens(self) -> bool:
        """Whether the loop waits on a file descriptor of the program's (a server's socket, a
        connection, a pipe; its own self-pipe aside), so something from outside may wake it."""
        if self._listens is None:
            selector = getattr(self.loop, "_selector", None)
            try:
                found = selector.get_map() if selector is not None else None
                fds = set(found) if found is not None else set()
            except (AttributeError, RuntimeError, ValueError):
                fds = set()
            ssock = getattr(self.loop, "_ssock", None)
            if ssock is not None:
                fds.discard(ssock.fileno())
            self._listens = bool(fds)
        return self._listens

    def tasks(self, run_id: int) -> list[asyncio.Task[Any]]:
        if self._by_run is None:
            by_run: dict[int, list[asyncio.Task[Any]]] = {}
            run_of = self._run_of
            for task in asyncio.all_tasks(self.loop):
                by_run.setdefault(run_of.get(id(task), 0), []).append(task)
            self._by_run = by_run
        return self._by_run.get(run_id, [])

    def _read_timers(self) -> dict[int, float]:
        """One pass over the loop's timers: the futures they resolve, and the runs they serve."""
        if self._timers is None:
            timers: dict[int, float] = {}
            for handle in list(getattr(self.loop, "_scheduled", ())):
                if handle.cancelled():
                    continue
                for arg in getattr(handle, "_args", None) or ():
                    if isinstance(arg, asyncio.Future):
                        timers[id(arg)] = handle.when()
                context = getattr(handle, "_context", None)
                run_id = context.get(RUN_ID, 0) if context is not None else 0
                if (
                    run_id
                    and math.isfinite(handle.when())
                    and _program_timer(getattr(handle, "_callback", None))
                ):
                    self._timed_runs.add(run_id)
            self._timers = timers
        return self._timers

    def timer_for(self, future: object) -> float | None:
        """When a scheduled timer resolves ``future`` (``asyncio.sleep``), or None."""
        return self._read_timers().get(id(future))

    def timer_due(self, run_id: int) -> bool:
        """Whether a finite timer the run set (in its tasks' context) is still to fire."""
        self._read_timers()
        return run_id in self._timed_runs

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
    if not isinstance(outward[0], HELD) and scene.listens():
        # A server idles like this: a queue or an event that a callback on its socket (a
        # Protocol, a signal) will fill or set. Not stuck, and no proof of life either.
        return "neither", None
    user = frames[len(frames) - len(tail) - 1] if len(frames) > len(tail) else None
    _stack, culprit, _call = describe_frames(frames)
    name = _name_in(user, outward) or type(outward[0]).__name__
    return "stuck", Waiter("task", task_name(task), culprit, name, _holder(outward[0]))


class ProgressDetector:
    """Watches the runs it is told about on one traced loop and raises no-progress stalls.

    ``emit`` is called on the loop thread (default: the tracer's, so stalls stay in order with
    the steps around them). The tracer must be made with ``track_runs=True``.

    The decision lives in :meth:`check` (one look at ``now``); the periodic callback only feeds
    it the clock's time, so a test drives it with a manual clock and an idle loop.

    ``program`` tells what the program does beyond its tasks (a test passes a scripted one).
    Without it, :meth:`attach` sets up :class:`ProgramView`, which needs the loop's thread to
    tell cpviz's own threads apart; a detector never attached has only its tasks to go by.
    """

    def __init__(
        self,
        tracer: Tracer,
        clock: Clock,
        stall_s: float = 1.0,
        check_s: float = 0.1,
        emit: Callable[[Event], None] | None = None,
        program: Program | None = None,
        skip: Callable[[], Collection[int]] | None = None,
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
        self._loop_native: int | None = None
        self._program = program
        #: Native ids of the threads that are not the program's (the loop's, cpviz's probes).
        self._skip = skip
        self._view: ProgramView | None = None
        #: Below this much CPU between two readings, a thread or process did not run.
        self._cpu_floor = CPU_SHARE * self.check_s
        #: Each thread's or process's CPU seconds when last read.
        self._cpu_last: dict[Hashable, float] = {}
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
        self._loop_native = threading.get_native_id()
        if self._program is None:
            self._program = self._view = ProgramView(self._probe_threads)
        self._seen = self.tracer.written
        self._drops = self.tracer.dropped_total
        self._timer = loop.call_later(self.check_s, self._check)

    def detach(self) -> None:
        """Stop checking; safe from any thread and more than once."""
        loop, timer = self._loop, self._timer
        self._loop = self._timer = None
        if loop is None or timer is None or loop.is_closed():
            return

        def stop() -> None:  # on the loop thread, where the CPU reader's file is read
            timer.cancel()
            if self._view is not None:
                self._view.close()

        if self._loop_thread == threading.get_ident():
            stop()
        else:
            loop.call_soon_threadsafe(stop)

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
        # Whether the program's CPU moved or a thread sleeps on the outside: read once per
        # check, and only if a run needs it.
        ran: bool | None = None
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
                continue
            if not waiters:
                continue
            # Stuck by their stacks; yet a timer of the run's may still fire, or the program
            # may be working where no task can be seen (threads, child processes).
            if scene.timer_due(watch.run_id):
                watch.alive = now
                continue
            if ran is None:
                ran = self._program_ran()
            if ran:
                watch.alive = now
            elif now - watch.alive > self.stall_s:
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

    def _probe_threads(self) -> set[int]:
        """Native ids of the loop thread and cpviz's probe threads: their CPU is not the
        program's (the loop's own progress is its task steps)."""
        if self._skip is not None:
            return set(self._skip())
        # The lab imports this module; its rule for thread roles is read when first needed.
        from cpviz.agent.lab import thread_roles

        return {tid for tid, _name, role in thread_roles(self._loop_native)
                if role in ("loop", "probe")}

    def _program_ran(self) -> bool:
        """Whether the program worked, or will wake by itself, where no task shows it: a
        Python thread moved, a thread or process used CPU, or a thread sleeps on the outside.

        Cheapest first: the first costs no syscall, the others read a few small files.
        """
        program = self._program
        if program is None:
            return False
        return program.moved() or self._cpu_ran(program) or program.waits_outside()

    def _cpu_ran(self, program: Program) -> bool:
        """Whether a thread of the program or a process below it ran since it was last read.

        Stops at the first that did, so a busy program costs a read or two. One first seen
        counts all its CPU so far: it was started since the last reading, or is read for the
        first time, and either way quiet cannot be vouched for yet.
        """
        last, floor = self._cpu_last, self._cpu_floor
        seen: set[Hashable] = set()
        for key, cpu in program.cpu():
            seen.add(key)
            before = last.get(key, 0.0)
            last[key] = cpu
            if (cpu - before if cpu >= before else cpu) >= floor:  # lower: a reused id
                return True
        for key in last.keys() - seen:  # a full reading: forget threads and processes gone
            del last[key]
        return False

    def _blocked_threads(self) -> list[Waiter]:
        """The program's threads blocked in its own code (a lock, a join): those a worker
        thread's wait is likely to be about."""
        skip = self._probe_threads()
        frames = sys._current_frames()
        out: list[Waiter] = []
        for thread in threading.enumerate():
            if thread.native_id in skip:
                continue
            waiter = thread_wait(thread, frames.get(thread.ident or -1))
            if waiter is not None and waiter.frame is not None:
                out.append(waiter)
        del frames
        return out

    def _open(self, watch: _Watch, now: float, waiters: tuple[Waiter, ...]) -> None:
        if any(w.kind == "thread" for w in waiters):
            found = {(w.kind, w.name): w for w in waiters}
            for waiter in self._blocked_threads():
                found.setdefault((waiter.kind, waiter.name), waiter)
            waiters = tuple(sorted(found.values(), key=lambda w: (w.name, w.kind)))
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

