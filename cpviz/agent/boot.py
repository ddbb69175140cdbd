"""Run a program as it is, with cpviz's probes in it: ``python -m cpviz.agent.boot``.

The viewer starts this in place of ``python app.py args`` (or ``python -m pkg args``). It sets
up the probes and then runs the program exactly as the interpreter would: as ``__main__``, with
its own ``sys.argv``, on the main thread, with its signal handlers and (headless) its stdin,
and it exits with the program's status.

Why a ``-m`` wrapper rather than ``sitecustomize``: it loads the probes into this one process
only, not into every Python process the program starts, and nothing in the user's environment
changes. The program's code is untouched.

Every asyncio loop the program creates is traced and watched, whichever thread runs it and
however it was made (``asyncio.run``, ``asyncio.Runner``, ``new_event_loop``, a
``loop_factory``): the tracer attaches when a loop is created, the heartbeat and the watchdog
when it starts running and until it stops. A loop that is not asyncio's own (uvloop) is watched
for freezes, and the screen says once that its task steps cannot be traced.

Standard library only: this runs inside the user's program (and interpreter).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import runpy
import signal
import socket
import sys
import threading
import traceback
from asyncio import base_events
from asyncio import events as aio_events
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from cpviz.agent.streamer import Streamer
from cpviz.agent.tracer import Tracer
from cpviz.agent.trio_probe import TrioLoop, make_instrument, when_imported, wrap_run
from cpviz.agent.watchdog import Watchdog, is_probe
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import IncidentRecord, Role, RunEnd, RunResult, RunStart
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    CHANNEL_FD_ENV,
    COMMAND,
    HELLO,
    MARK,
    Sender,
    json_frame,
    read_frames,
)

#: The run id a program's one run has (the viewer numbers it the same).
PROGRAM_RUN = 1
#: Frames of a program's exception kept in its result.
LAST_FRAMES = 5


class Probes:
    """The probes of one program: a tracer per asyncio loop, a watchdog per running loop."""

    def __init__(self, stream: EventStream, clock: MonotonicClock, threshold_s: float) -> None:
        self.stream = stream
        self.clock = clock
        self.threshold_s = threshold_s
        #: The program's run: every task of every loop belongs to it.
        self.run_id = PROGRAM_RUN
        self._tracers: dict[int, Tracer] = {}
        self._watchdogs: dict[int, Watchdog] = {}
        #: Native ids of the threads running a watched loop now.
        self._loop_threads: dict[int, int] = {}
        self._untraced: set[str] = set()
        #: Called when a loop starts on a thread (the streamer then sends the thread roles).
        self.on_threads: Callable[[], None] | None = None
        #: Watchdogs of loops that stopped: their freezes still belong to the run's result.
        self._done: list[Watchdog] = []
        self._lock = threading.Lock()

    # -- the hooks ------------------------------------------------------------------------------

    def loop_created(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop was made: trace it from its first task on."""
        tracer = Tracer(origin=self.clock.origin, track_runs=True, default_run=self.run_id)
        try:
            tracer.attach(loop)
        except (TypeError, RuntimeError):
            return
        self.stream.add_feed(tracer)
        with self._lock:
            self._tracers[id(loop)] = tracer

    def loop_running(self, loop: asyncio.AbstractEventLoop | TrioLoop | None) -> None:
        """This thread's loop started (``loop``) or stopped (None) running."""
        me = threading.get_ident()
        if loop is None:
            with self._lock:
                watchdog = self._watchdogs.pop(me, None)
                self._loop_threads.pop(me, None)
                if watchdog is not None:
                    self._done.append(watchdog)
            if watchdog is not None:
                watchdog.detach()
            return
        if (id(loop) not in self._tracers and type(loop).__name__ not in self._untraced
                and not isinstance(loop, TrioLoop)):
            self._untraced.add(type(loop).__name__)
            print(f"cpviz: {type(loop).__module__}.{type(loop).__name__} cannot be traced step "
                  "by step (it is not asyncio's own loop); its freezes are still watched",
                  file=sys.stderr)
        watchdog = Watchdog(self.stream.put, self.clock, threshold_s=self.threshold_s)
        with self._lock:
            self._watchdogs[me] = watchdog
            known = threading.get_native_id() in self._loop_threads.values()
            self._loop_threads[me] = threading.get_native_id()
        watchdog.attach(loop)  # type: ignore[arg-type]  # a TrioLoop quacks as one
        if not known and self.on_threads is not None:
            self.on_threads()

    # -- what the streamer and the result need --------------------------------------------------

    def tracers(self) -> list[Tracer]:
        with self._lock:
            return list(self._tracers.values())

    def threads(self) -> list[tuple[int, str, Role]]:
        with self._lock:
            loops = set(self._loop_threads.values())
        out: list[tuple[int, str, Role]] = []
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None:
                continue
            role: Role = "loop" if tid in loops else "probe" if is_probe(thread) else "thread"
            out.append((tid, thread.name, role))
        return out

    def incidents(self, t0: float, t1: float) -> tuple[IncidentRecord, ...]:
        with self._lock:
            watchdogs = list(self._watchdogs.values()) + list(self._done)
        return tuple(i for w in watchdogs for i in w.incidents_between(t0, t1))

    def trio_running(self, loop: Any) -> None:
        """A trio run started (``loop``: its stand-in for the watchdog) or ended (None)."""
        self.loop_running(loop)

    def max_lag(self, t0: float, t1: float) -> float:
        """The worst heartbeat lag of any of the program's loops in [t0, t1]."""
        with self._lock:
            watchdogs = list(self._watchdogs.values()) + list(self._done)
        return max((w.max_lag_between(t0, t1) for w in watchdogs), default=0.0)

    def stop(self) -> None:
        with self._lock:
            watchdogs = list(self._watchdogs.values())
        for watchdog in watchdogs:
            watchdog.detach()


def install_hooks(probes: Probes) -> None:
    """Make every asyncio loop of this process known to ``probes``.

    Two places see every loop: ``BaseEventLoop.__init__`` (asyncio's own loops, before their
    first task) and ``events._set_running_loop``, which every loop calls when it starts and
    stops running on a thread (uvloop too, as it calls asyncio's).
    """
    original_init = base_events.BaseEventLoop.__init__
    original_set = aio_events._set_running_loop

    def init(self: base_events.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        probes.loop_created(self)

    def set_running(loop: asyncio.AbstractEventLoop | None) -> None:
        original_set(loop)
        try:
            probes.loop_running(loop)
        except Exception as exc:  # a probe must never take the program down
            print(f"cpviz: could not watch a loop: {exc}", file=sys.stderr)

    base_events.BaseEventLoop.__init__ = init  # type: ignore[method-assign,assignment]
    aio_events._set_running_loop = set_running
    # asyncio re-exports it; code that took it from there (uvloop) must see the wrapper too.
    asyncio._set_running_loop = set_running


def watch_trio(probes: Probes) -> None:
    """Trace trio runs too, through its Instrument API, once the program imports trio."""

    def patch(trio: ModuleType) -> None:
        try:
            def instrument() -> Any:
                return make_instrument(trio, probes.clock, probes.stream.put, probes.run_id,
                                       probes.trio_running)

            wrap_run(trio, instrument)
        except Exception as exc:  # a probe must never take the program down
            print(f"cpviz: trio will not be traced: {exc}", file=sys.stderr)

    when_imported("trio", patch)


def _last_frames(exc: BaseException) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)[-LAST_FRAMES:]
    return [f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}: {f.line or ''}".rstrip()
            for f in frames]


def run_program(program: Sequence[str]) -> tuple[int, str, list[str]]:
    """Run ``program`` (``[script, args...]`` or ``["-m", module, args...]``) as ``__main__``.

    Returns (exit status, outcome, last frames of an exception). The program's own
    exception is printed as the interpreter would print it.
    """
    try:
        if program[0] == "-m":
            sys.argv = [program[1], *program[2:]]
            runpy.run_module(program[1], run_name="__main__", alter_sys=True)
        else:
            script = program[0]
            sys.argv = list(program)
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            return 0, "completed", []
        if isinstance(code, int):
            return code, f"exited with status {code}", []
        print(code, file=sys.stderr)
        return 1, "exited with status 1", []
    except KeyboardInterrupt as exc:
        traceback.print_exc()
        return 130, "interrupted", _last_frames(exc)
    except BaseException as exc:
        traceback.print_exc()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return 1, f"failed: {reason}", _last_frames(exc)
    return 0, "completed", []


def _wait_for_threads() -> None:
    """As the interpreter does before exiting: the program's non-daemon threads finish first."""
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon or is_probe(thread):
            continue
        thread.join()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fd_text = os.environ.pop(CHANNEL_FD_ENV, "")
    if not fd_text.isdigit() or "--" not in args or len(args) < 3:
        print("cpviz agent: started by cpviz itself, not by hand", file=sys.stderr)
        return 2
    config = json.loads(args[0])
    run_id = int(config.get("run", PROGRAM_RUN))
    program = args[args.index("--") + 1 :]
    sock = socket.socket(fileno=int(fd_text))
    sender = Sender(sock)
    clock = MonotonicClock(float(config["origin"]))
    stream = EventStream(clock)
    probes = Probes(stream, clock, float(config["threshold_s"]))
    probes.run_id = run_id
    install_hooks(probes)
    watch_trio(probes)
    streamer = Streamer(probes, sender, os.getppid(), lambda: os.kill(os.getpid(),
                                                                        signal.SIGKILL))

    def commands() -> None:
        """The viewer's commands; a quit (or the viewer gone) interrupts the program."""
        for kind, payload in read_frames(sock):
            if kind == COMMAND and json.loads(payload).get("op") == "quit":
                break
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGINT)

    probes.on_threads = streamer.threads_changed
    threading.Thread(target=commands, name="cpviz-commands", daemon=True).start()
    sender.send(json_frame(HELLO, {
        "pid": os.getpid(), "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "gil": bool(getattr(sys, "_is_gil_enabled", lambda: True)()),
    }))
    name = program[1] if program[0] == "-m" else os.path.basename(program[0])
    params = (("argv", " ".join(program)),)
    streamer.start()
    sender.send(json_frame(MARK, {"run": run_id, "at": "start"}))
    t0 = clock.now()
    stream.put(RunStart(t0, run_id, name, "program", params, 0))
    status, outcome, frames = run_program(program)
    with contextlib.suppress(KeyboardInterrupt):
        _wait_for_threads()
    t1 = clock.now()
    sender.send(json_frame(MARK, {"run": run_id, "at": "end"}))
    extra: list[tuple[str, Any]] = [("exit_status", status),
                                    ("max_loop_lag_s", round(probes.max_lag(t0, t1), 6))]
    if frames:
        extra.append(("last_frames", frames))
    wall = max(t1 - t0, 1e-9)
    result = RunResult(name, "program", params, wall, 0.0, 0.0, None, None,
                       probes.incidents(t0, t1), outcome, extra=tuple(extra))
    stream.put(RunEnd(t1, run_id, result))
    probes.stop()
    streamer.stop()
    return status


def entry() -> None:
    code = main()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    entry()
