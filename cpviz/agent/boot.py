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
``loop_factory``): see :mod:`cpviz.agent.probes`, which an application that embeds the agent
(:mod:`cpviz.agent.install`) loads too.

Standard library only: this runs inside the user's program (and interpreter).
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from cpviz.agent.probes import PROGRAM_RUN, Probes, install_hooks, watch_trio
from cpviz.agent.streamer import Streamer
from cpviz.agent.tracer import Tracer
from cpviz.agent.watchdog import is_probe
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import RunEnd, RunResult, RunStart
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    CHANNEL_FD_ENV,
    COMMAND,
    MARK,
    Sender,
    hello,
    json_frame,
    read_frames,
)

#: Frames of a program's exception kept in its result.
LAST_FRAMES = 5


class ProgramProbes(Probes):
    """The probes, plus what a program run as it is gets like the lab's runs: the no-progress
    detector on each traced loop (a deadlock among its tasks)."""

    def __init__(self, stream: EventStream, clock: MonotonicClock, threshold_s: float,
                 stall_s: float) -> None:
        super().__init__(stream, clock, threshold_s)
        self.stall_s = stall_s
        #: Per loop thread, its detector; the figures of the first stall.
        self._detectors: dict[int, Any] = {}
        self.stall: dict[str, Any] = {}

    def loop_running(self, loop: Any) -> None:
        me = threading.get_ident()
        if loop is None:
            detector = self._detectors.pop(me, None)
            if detector is not None:
                found = detector.unwatch(self.run_id, self.clock.now())
                detector.detach()
                self.stall = self.stall or found
            super().loop_running(loop)
            return
        super().loop_running(loop)
        with self._lock:
            tracer = self._tracers.get(id(loop))
        if tracer is not None:
            self._watch_progress(me, loop, tracer)

    def _watch_progress(self, me: int, loop: Any, tracer: Tracer) -> None:
        from cpviz.agent.progress import ProgressDetector

        def skip() -> set[int]:  # the loops' threads and cpviz's: their CPU is not progress
            return {tid for tid, _name, role in self.threads() if role in ("loop", "probe")}

        detector = ProgressDetector(tracer, self.clock, stall_s=self.stall_s, skip=skip)
        detector.attach(loop)
        detector.watch(self.run_id, self.clock.now())
        self._detectors[me] = detector


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
    probes = ProgramProbes(stream, clock, float(config["threshold_s"]),
                           float(config.get("stall_s", 1.0)))
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
    sender.send(hello())
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
    extra += list(probes.stall.items())
    if probes.notes:
        extra.append(("note", "; ".join(probes.notes)))
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
