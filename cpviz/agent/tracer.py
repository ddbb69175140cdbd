"""Task-step tracer: every step of every task, taken from the scheduler itself.

How it works, and why it is shaped like this:

* asyncio runs a task one *step* at a time, and every step (the first one, a wake-up after a
  future or timer, a ``sleep(0)`` yield) is scheduled through the loop's ``call_soon`` with a
  bound method of the task as the callback. The tracer replaces ``call_soon`` and ``_call_soon``
  on the loop *instance* (so it attaches to any ``BaseEventLoop``, not just the lab's) with hooks
  that build a :class:`_StepHandle` for task callbacks. The handle remembers when it became
  ready and times its own run (``start``/``end``). Nothing in a workload reports about itself.
* A step costs about 0.1 µs on top of asyncio's own 1.4 µs (see ``_make_hooks`` for how): the
  hook schedules in one frame where asyncio takes five, and a clock read serves two ends where
  it can do so exactly.
* The hot path allocates no container objects. Each step is four doubles packed into a
  preallocated ring (``array('d')``); allocating a tuple per step woke the cyclic GC so often that
  it alone cost ~40% on the ``sleep(0)`` benchmark. Spawns wait for the consumer flat in a deque
  for the same reason.
* The ring has one producer (the loop thread) and one consumer (whoever drains the stream). When
  the consumer falls behind, new records are dropped and counted rather than overwriting ones the
  consumer may be reading; the Model turns the count into a visible gap.
* Events the loop thread emits itself (task spawns, run start/progress/end) travel through the same
  ring, so a run's end is never seen before its last steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import struct
import time
from array import array
from asyncio import base_events
from asyncio import events as aio_events
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple

from cpviz.engine.events import Event, TaskSpawn
from cpviz.engine.wire import STRIDE as _WIRE_STRIDE
from cpviz.engine.wire import steps_from_raw

#: The run a task belongs to. The lab sets it for a run's root task; children inherit it.
RUN_ID: contextvars.ContextVar[int] = contextvars.ContextVar("cpviz_run_id", default=0)

_STRIDE = _WIRE_STRIDE
_perf = time.perf_counter
_monotonic = time.monotonic
#: One ring record: four doubles in native order, as ``array('d')`` holds them.
_RECORD = struct.Struct(f"{_WIRE_STRIDE}d")
#: What ``attach`` may put on a loop instance, and ``detach`` takes off.
_HOOKED = ("call_soon", "_call_soon", "time")


class _Hooks(NamedTuple):
    """What ``attach`` installs on a loop."""

    call_soon: Callable[..., Any]
    call_soon_inner: Callable[..., Any]
    time: Callable[[], float]
    factory: Callable[..., asyncio.Task[Any]]
    forget: Callable[[], None]


def _is_own(loop: asyncio.AbstractEventLoop, name: str) -> bool:
    """Whether ``loop.name`` is asyncio's own method, neither overridden nor hooked.

    Asked of the bound method, not of ``vars(loop)``: making the instance dict of a loop
    turns every attribute read on it (``_run_once`` reads a dozen per batch) into a dict
    lookup.
    """
    method = getattr(loop, name, None)
    return getattr(method, "__func__", None) is getattr(base_events.BaseEventLoop, name, ())


def task_name(task: asyncio.Task[Any]) -> str:
    """The name a row shows: the task's own, or, for asyncio's default ``Task-N``, its
    coroutine's (``fetch``, ``Handler.serve``), which is what the code calls it."""
    name = task.get_name()
    if name is None or name == "None" or (name.startswith("Task-") and name[5:].isdigit()):
        # (3.13.0 names factory-made tasks set_name(None) when none was given.)
        coro = task.get_coro()
        qualname = getattr(coro, "__qualname__", None)
        return str(qualname) if qualname else f"Task@{id(task) & 0xFFFF:04x}"
    return str(name)


class Tracer:
    """Records task steps on one asyncio loop into a bounded ring.

    ``capacity`` is in records (steps plus spawns); memory is ``32 * capacity`` bytes.
    """

    def __init__(
        self, capacity: int = 1 << 18, origin: float = 0.0, *, track_runs: bool = False,
        default_run: int = 0,
    ) -> None:
        if capacity & (capacity - 1) or capacity <= 0:
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        #: perf_counter reading that is t = 0 on the session clock.
        self.origin = origin
        self.capacity = capacity
        self._buf = array("d", bytes(8 * _STRIDE * capacity))
        self._view = memoryview(self._buf)
        #: Spawns and events from the loop thread, in production order, flat: five items each,
        #: (ring position, perf_counter time, task, run id, parent task) for a spawn and
        #: (ring position, None, event, 0, None) for an event. Flat, because a tuple kept per
        #: spawn until the consumer drains is a tracked object the cyclic GC counts: 10,000 of
        #: them cost the step benchmark a dozen extra collections and a full one.
        self._objects: deque[Any] = deque()
        #: ``[records read by the consumer, records dropped and not yet reported]``. A list, so
        #: the hot path reaches it through one closure cell.
        self._state = [0, 0]
        #: Records dropped over the tracer's life because the ring was full.
        self.dropped = 0
        self._written: Callable[[], int] = lambda: 0
        self._consumed: Callable[[int], None] = lambda position: None
        self._forget: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_factory: Any = None
        self.thread_id: int | None = None
        #: With ``track_runs``: task id → run id (0 outside runs) of every task spawned since
        #: attaching, so a reader on the loop thread can tell which run a ring record belongs
        #: to (3.11 has no ``Task.get_context``). Written by the loop thread at each spawn and
        #: never pruned here: the reader drops finished tasks (the lab's progress detector).
        self.run_of: dict[int, int] | None = {} if track_runs else None
        #: The run a task belongs to when nothing set one (a program cpviz runs as it is: all
        #: its tasks are its one run's, whichever thread's loop they run on).
        self.default_run = default_run

    # -- attaching -------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start tracing ``loop``. Call before the tasks you want traced are created."""
        if self._loop is not None:
            raise RuntimeError("this tracer is already attached to a loop")
        if getattr(loop, "_call_soon", None) is None or getattr(loop, "_ready", None) is None:
            raise TypeError(
                f"cannot trace {type(loop).__name__}: it is not an asyncio BaseEventLoop"
            )
        self._loop = loop
        self._previous_factory = loop.get_task_factory()
        # The hooks that stand in for a whole method go in only where the loop has asyncio's
        # own and nobody hooked it already: a loop that schedules, or keeps time, its own way
        # keeps it, and its steps cost a frame and a clock read more.
        fast = _is_own(loop, "call_soon") and _is_own(loop, "_call_soon")
        share = _is_own(loop, "time") and _is_own(loop, "_run_once")
        hooks = self._make_hooks(loop, self._previous_factory, share)
        if fast:
            loop.call_soon = hooks.call_soon  # type: ignore[method-assign,assignment]
        if share:
            loop.time = hooks.time  # type: ignore[method-assign]
        loop._call_soon = hooks.call_soon_inner  # type: ignore[attr-defined]
        loop.set_task_factory(hooks.factory)
        self._forget = hooks.forget

    def detach(self) -> None:
        """Stop tracing; the loop goes back to its own scheduling."""
        loop = self._loop
        if loop is None:
            return
        for name in _HOOKED:
            with contextlib.suppress(AttributeError):
                delattr(loop, name)
        loop.set_task_factory(self._previous_factory)
        self._forget()
        self._loop = None

    def _make_hooks(self, loop: asyncio.AbstractEventLoop, previous: Any, share: bool) -> _Hooks:
        """Build the hooks, the step handle class and the task factory around shared cells.

        Everything the hot path touches is a closure cell: a cell costs a fraction of an
        attribute lookup. What makes a step cheap, none of it approximate:

        * **One frame to schedule a step**, where asyncio takes five (``call_soon``,
          ``_check_closed``, ``_call_soon``, ``Handle.__init__``, ``get_debug``): the handle is
          made without ``__init__`` and filled in the hook's own frame.
        * **A continuation costs no clock read to schedule.** A step that schedules its own
          task's next step (``sleep(0)``, a bare ``yield``) does so as its last act, and that
          next step cannot be run before this one ends: its ready time is this step's end, read
          once for both. Such a step did not finish its task either, so ``done()`` is not asked,
          and the task id is handed on rather than asked of ``id()`` again.
        * **Back-to-back steps share a read** (``share``). The loop runs its ready queue in
          order; a step whose handle was at the queue's head when the previous step ended runs
          next, with nothing between but the loop's own pop, so its start is that end. Whatever
          else the loop does between handles (select, timers) comes after it calls
          ``loop.time()``, and the hook for that forgets the head: the next step reads the clock.
        * **No garbage per step**: no argument tuple is built for a step, which has none, and
          the record is packed straight into the ring.
        """
        buf = self._buf
        pack = _RECORD.pack_into
        mask = self.capacity - 1
        capacity = self.capacity
        state = self._state
        side_extend = self._objects.extend
        task_type = asyncio.Task
        task_done = task_type.done
        current_task = asyncio.current_task
        run_id = RUN_ID.get
        run_of = self.run_of
        default_run = self.default_run
        ready: deque[aio_events.Handle] = loop._ready  # type: ignore[attr-defined]
        # Where the next handle is looked for at a step's end: with no ``time`` hook there is no
        # telling a batch's end, so an empty queue, where none is ever found.
        queue: deque[aio_events.Handle] = ready if share else deque()
        base_call_soon = loop.call_soon
        base_inner = loop._call_soon  # type: ignore[attr-defined]
        plain_handle = aio_events.Handle
        copy_context = contextvars.copy_context
        #: Records written; the position the producer must not reach (consumer's + capacity).
        written = 0
        limit = capacity
        #: The task whose step is running, and the handle it scheduled for its own next step.
        running: asyncio.Task[Any] | None = None
        continuation: _StepHandle | None = None
        #: The handle at the queue's head when the last step ended, and that end.
        after: aio_events.Handle | None = None
        last_end = 0.0

        def count() -> int:
            return written

        def consumed(position: int) -> None:
            nonlocal limit
            limit = position + capacity

        def forget() -> None:
            nonlocal after, continuation
            after = continuation = None

        self._written = count
        self._consumed = consumed

        def factory(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
        ) -> asyncio.Task[Any]:
            task: asyncio.Task[Any] = (
                previous(loop, coro, **kwargs)
                if previous is not None
                else task_type(coro, loop=loop, **kwargs)
            )
            # The task itself, not its name: on 3.11 and 3.12 create_task(name=...) names the
            # task only after the factory returns. The consumer reads the name when it drains.
            # Tagged with the ring position, so the consumer puts it before the task's steps.
            run = run_id() or default_run
            side_extend((written, _perf(), task, run, current_task(loop)))
            if run_of is not None:
                run_of[id(task)] = run
            return task

        class _StepHandle(aio_events.Handle):
            """A Handle that times the task step it runs.

            Fields no step handle ever changes are class attributes over Handle's slots.
            """

            __slots__ = ("_ready_at", "_task", "_tid")
            __init__ = object.__init__
            _loop = loop
            _source_traceback = None
            # Slots the hooks fill (asyncio's stubs do not declare Handle's own).
            _callback: Callable[..., Any]
            _context: contextvars.Context
            _repr: str | None
            _task: asyncio.Task[Any]
            _tid: float
            _ready_at: float

            def _run(self) -> None:
                nonlocal written, running, continuation, after, last_end
                task = self._task
                # Outside a step ``running`` is None; inside one, a loop run nested in it
                # (nest_asyncio) gives the outer step back at the end.
                outer, running = running, task
                if self is continuation:
                    # Run before the step that scheduled it ended: only a nested loop does that.
                    continuation = None
                    self._tid = float(id(task))
                    self._ready_at = _perf()
                tid = self._tid
                start = last_end if self is after else _perf()
                args = self._args
                try:
                    if args:
                        self._context.run(self._callback, *args)
                    else:
                        self._context.run(self._callback)
                except (SystemExit, KeyboardInterrupt):
                    running, after = outer, None
                    if continuation is not None and continuation._task is task:
                        continuation._ready_at = _perf()
                        continuation._tid = tid
                        continuation = None
                    raise
                except BaseException as exc:
                    self._loop.call_exception_handler(
                        {
                            "message": f"Exception in task step {self._callback!r}",
                            "exception": exc,
                            "handle": self,
                        }
                    )
                end = last_end = _perf()
                running = outer
                if continuation is not None and continuation._task is task:
                    continuation._ready_at = end
                    continuation._tid = tid
                    continuation = None
                elif task_done(task):
                    tid = -tid
                after = queue[0] if queue else None
                n = written
                if n >= limit:
                    state[1] += 1
                else:
                    pack(buf, (n & mask) << 5, tid, self._ready_at, start, end)
                    written = n + 1
                self = None  # type: ignore[assignment]  # break cycles, as Handle._run does

        def call_soon(
            callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
        ) -> aio_events.Handle:
            """``loop.call_soon``, in one frame where asyncio takes five."""
            nonlocal continuation
            task = getattr(callback, "__self__", None)
            if loop._debug:  # type: ignore[attr-defined]
                # Its thread and callback checks, then the inner hook.
                return base_call_soon(callback, *args, context=context)
            if loop._closed:  # type: ignore[attr-defined]
                raise RuntimeError("Event loop is closed")
            if type(task) is not task_type:
                handle = plain_handle(callback, args, loop, context)
                ready.append(handle)
                return handle
            step: _StepHandle = _StepHandle()
            step._callback = callback
            step._args = args
            step._context = context if context is not None else copy_context()
            step._cancelled = False
            step._repr = None
            step._task = task
            if task is running and continuation is None:
                continuation = step  # its id and ready time come at this step's end
            else:
                step._tid = float(id(task))
                step._ready_at = _perf()
            ready.append(step)
            return step

        def call_soon_inner(
            callback: Callable[..., Any], args: Any, context: contextvars.Context | None
        ) -> aio_events.Handle:
            """``loop._call_soon``: what ``call_soon_threadsafe`` and debug mode go through.

            Possibly from another thread, so never a continuation: always a clock read.
            """
            task = getattr(callback, "__self__", None)
            if type(task) is not task_type:
                return base_inner(callback, args, context)  # type: ignore[no-any-return]
            step: _StepHandle = _StepHandle()
            step._callback = callback
            step._args = args
            step._context = context if context is not None else copy_context()
            step._cancelled = False
            step._repr = None
            step._task = task
            step._tid = float(id(task))
            step._ready_at = _perf()
            ready.append(step)
            return step

        def loop_time() -> float:
            """``loop.time``: the loop calls it between its batches of handles.

            Installed only over asyncio's own, whose whole body is ``time.monotonic()``: called
            here directly, it costs the loop no frame more than before.
            """
            nonlocal after
            after = None
            return _monotonic()

        return _Hooks(call_soon, call_soon_inner, loop_time, factory, forget)

    # -- the loop thread's own events ----------------------------------------------------------

    @property
    def written(self) -> int:
        """Records written so far (steps and queued events)."""
        return self._written()

    @property
    def dropped_total(self) -> int:
        """Records dropped so far, reported or not: a change means steps happened unrecorded."""
        return self.dropped + self._state[1]

    def emit(self, event: Event) -> None:
        """Queue an event in order with the steps around it. Loop thread only."""
        self._objects.extend((self._written(), None, event, 0, None))

    # -- consumer side --------------------------------------------------------------------------

    def drain(self, out: list[Event]) -> int:
        """Move everything written so far into ``out`` as events; return records dropped since."""
        buf, origin = self._buf, self.origin

        def spawn(at: float, task_id: int, name: str, run: int, parent: int) -> None:
            out.append(TaskSpawn(at - origin, task_id, name, run, parent))

        return self._walk(lambda a, b: steps_from_raw(buf, origin, out, a, b), spawn, out.append)

    def drain_raw(
        self,
        steps: Callable[[bytes], None],
        spawn: Callable[[float, int, str, int, int], None],
        event: Callable[[Event], None],
    ) -> int:
        """Like :meth:`drain`, but nothing becomes an event object that need not.

        Steps leave as raw ring records, a run of them at a time, and spawns as their fields
        (perf_counter time, task id, name, run, parent id). This is what the observed process
        sends down the channel: copying a slice of the ring costs microseconds, where making an
        object per step or spawn would cost the watched program's GIL about a microsecond each.
        The viewer makes the events (:mod:`cpviz.engine.wire`).
        """
        view = self._view
        return self._walk(
            lambda a, b: steps(view[a * _STRIDE : b * _STRIDE].tobytes()), spawn, event
        )

    def _walk(
        self,
        records: Callable[[int, int], None],
        spawn: Callable[[float, int, str, int, int], None],
        event: Callable[[Event], None],
    ) -> int:
        """Hand over records and side objects written so far, in production order.

        ``records(a, b)`` receives contiguous ring slots ``[a, b)``. Side objects (spawns, the
        loop thread's own events) carry the ring position at which they were queued; each goes
        out just before the ring record at that position.
        """
        mask = self.capacity - 1
        objects = self._objects
        state = self._state
        start, stop = state[0], self._written()
        pos = start

        def upto(end: int) -> None:
            nonlocal pos
            while pos < end:
                slot = pos & mask
                n = min(end - pos, self.capacity - slot)
                records(slot, slot + n)
                pos += n

        # Objects queued after the last record read belong before the next record (index
        # ``stop``): they can go now; anything tagged later waits for its records.
        take = objects.popleft
        while objects and objects[0] <= stop:
            upto(objects[0])
            _, at, obj, run, parent = take(), take(), take(), take(), take()
            if at is None:
                event(obj)
                continue
            spawn(at, id(obj), task_name(obj), run, id(parent) if parent is not None else 0)
        upto(stop)
        state[0] = stop
        self._consumed(stop)
        dropped = state[1]
        state[1] -= dropped
        self.dropped += dropped
        return dropped
