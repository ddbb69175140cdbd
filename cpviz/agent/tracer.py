"""Task-step tracer: every step of every task, taken from the scheduler itself.

How it works, and why it is shaped like this:

* asyncio runs a task one *step* at a time, and every step (the first one, a wake-up after a
  future or timer, a ``sleep(0)`` yield) is scheduled through the loop's ``_call_soon`` with a
  bound method of the task as the callback. The tracer replaces ``_call_soon`` on the loop
  *instance* (so it attaches to any ``BaseEventLoop``, not just the lab's) with one that builds a
  :class:`_StepHandle` for task callbacks. The handle remembers when it was scheduled (``ready``)
  and times its own run (``start``/``end``). Nothing in a workload reports about itself.
* The hot path allocates no container objects. Each step is four doubles written into a
  preallocated ring (``array('d')``); allocating a tuple per step woke the cyclic GC so often that
  it alone cost ~40% on the ``sleep(0)`` benchmark.
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
import time
from array import array
from asyncio import events as aio_events
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from cpviz.engine.events import Event, TaskSpawn
from cpviz.engine.wire import STRIDE as _WIRE_STRIDE
from cpviz.engine.wire import steps_from_raw

#: The run a task belongs to. The lab sets it for a run's root task; children inherit it.
RUN_ID: contextvars.ContextVar[int] = contextvars.ContextVar("cpviz_run_id", default=0)

_STRIDE = _WIRE_STRIDE
_perf = time.perf_counter


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
        #: (ring position, spawn record or event) from the loop thread, in production order.
        self._objects: deque[tuple[Any, ...]] = deque()
        #: ``[records read by the consumer, records dropped and not yet reported]``. A list, so
        #: the hot path reaches it through one closure cell.
        self._state = [0, 0]
        #: Records dropped over the tracer's life because the ring was full.
        self.dropped = 0
        self._written: Callable[[], int] = lambda: 0
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
        original = getattr(loop, "_call_soon", None)
        ready = getattr(loop, "_ready", None)
        if original is None or ready is None:
            raise TypeError(
                f"cannot trace {type(loop).__name__}: it is not an asyncio BaseEventLoop"
            )
        self._loop = loop
        self._previous_factory = loop.get_task_factory()
        step_handle, factory = self._make_hooks(self._previous_factory)
        task_type = asyncio.Task
        copy_context = contextvars.copy_context

        def _call_soon(callback: Callable[..., Any], args: Any, context: Any) -> Any:
            owner = getattr(callback, "__self__", None)
            if owner.__class__ is not task_type:
                return original(callback, args, context)
            handle = step_handle(  # type: ignore[call-arg]
                callback,
                args,
                loop,
                context if context is not None else copy_context(),
                owner,
                _perf(),
            )
            ready.append(handle)
            return handle

        loop._call_soon = _call_soon  # type: ignore[attr-defined]
        loop.set_task_factory(factory)

    def detach(self) -> None:
        """Stop tracing; the loop goes back to its own scheduling."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(AttributeError):
            del loop._call_soon  # type: ignore[attr-defined]
        loop.set_task_factory(self._previous_factory)
        self._loop = None

    def _make_hooks(
        self, previous: Any
    ) -> tuple[type[aio_events.Handle], Callable[..., asyncio.Task[Any]]]:
        """Build the step handle class and the task factory around shared closure cells.

        ``written`` is a closure cell rather than an attribute: it is read and bumped on every
        step, and a cell costs a fraction of an instance-dict lookup and store.
        """
        buf = self._buf
        mask = self.capacity - 1
        capacity = self.capacity
        written = 0
        state = self._state
        side_append = self._objects.append
        task_type = asyncio.Task
        current_task = asyncio.current_task
        run_id = RUN_ID.get
        run_of = self.run_of
        default_run = self.default_run

        def count() -> int:
            return written

        self._written = count

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
            side_append((written, _perf(), task, run, current_task(loop)))
            if run_of is not None:
                run_of[id(task)] = run
            return task

        class _StepHandle(aio_events.Handle):
            __slots__ = ("_ready_at", "_task")

            def __init__(
                self,
                callback: Callable[..., Any],
                args: Any,
                loop: Any,
                context: contextvars.Context,
                task: asyncio.Task[Any],
                ready_at: float,
            ) -> None:
                # Handle.__init__ minus its debug-mode check, which the traced loop never uses.
                self._context = context
                self._loop = loop
                self._callback = callback
                self._args = args
                self._cancelled = False
                self._repr = None
                self._source_traceback = None
                self._task = task
                self._ready_at = ready_at

            def _run(self) -> None:
                nonlocal written
                start = _perf()
                try:
                    self._context.run(self._callback, *self._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._loop.call_exception_handler(
                        {
                            "message": f"Exception in task step {self._callback!r}",
                            "exception": exc,
                            "handle": self,
                        }
                    )
                end = _perf()
                n = written
                if n - state[0] >= capacity:
                    state[1] += 1
                else:
                    task = self._task
                    i = (n & mask) << 2
                    buf[i] = -id(task) if task.done() else id(task)
                    buf[i + 1] = self._ready_at
                    buf[i + 2] = start
                    buf[i + 3] = end
                    written = n + 1
                self._task = None  # type: ignore[assignment]
                self = None  # type: ignore[assignment]  # break cycles, as Handle._run does

        return _StepHandle, factory

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
        self._objects.append((self._written(), event))

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
        while objects and objects[0][0] <= stop:
            upto(objects[0][0])
            obj = objects.popleft()
            if len(obj) == 2:
                event(obj[1])
                continue
            _, at, task, run, parent = obj
            name = task_name(task)
            spawn(at, id(task), str(name), run, id(parent) if parent is not None else 0)
        upto(stop)
        state[0] = stop
        dropped = state[1]
        state[1] -= dropped
        self.dropped += dropped
        return dropped
