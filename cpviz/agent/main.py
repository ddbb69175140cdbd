"""The observed process: the lab and its probes, talking to the viewer over a private channel.

The viewer (``cpviz``) starts this with ``python -m cpviz.agent`` and the same interpreter,
handing it one end of a socketpair. What happens here is only what must happen inside the
watched interpreter: the lab runs workloads, the tracer records task steps, the watchdog and the
no-progress detector watch the loop. A streamer thread sends the tracer's raw ring records in
batches (no per-step formatting here) and the probes' events as recording lines; the main
thread reads commands. Everything else, the core sampler and each run's CPU included, is done
from outside by the viewer.

It never outlives the viewer: when the channel closes (the viewer quit, crashed or was killed)
it stops every run and pool and exits, and its pool workers exit when they see it gone.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from cpviz.agent.lab import Lab, describe_error
from cpviz.agent.streamer import Streamer
from cpviz.engine.accounting import session_members
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.contract import Workload
from cpviz.engine.events import RunEnd, RunResult, RunStart
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    CHANNEL_FD_ENV,
    COMMAND,
    FATAL,
    MARK,
    Sender,
    hello,
    json_frame,
    read_frames,
)


class _Quit(BaseException):
    """SIGTERM or SIGINT: stop as after a quit command (a BaseException, so no ``except
    Exception`` on the way can swallow it)."""


def _interrupt(signum: int, frame: object) -> None:
    raise _Quit


def _child_signals() -> None:
    """In a process the observed program forks (a ``multiprocessing`` worker), signals mean
    what they mean without cpviz: its pool's terminate() must end it, and an inherited handler
    that raised instead was swallowed in the worker's start-up and left it waiting forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def end_descendants() -> None:
    """Kill what the program started and left running (a user's pool worker stuck on a lock,
    a child nobody waits for): nothing of the observed side may outlive it, even when the
    viewer is gone and cannot clean up. multiprocessing's resource tracker is spared: it exits
    by itself once this process has, after unlinking the semaphores it tracks."""
    from multiprocessing import resource_tracker

    me = os.getpid()
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    for pid in session_members(os.getsid(0)):
        if pid not in (me, tracker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def load_workloads(spec: str, user: str | None) -> tuple[Workload, ...]:
    """The catalogue from ``module:function`` (called with the user's spec, or None)."""
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name)
    return tuple(factory(user))


class Agent:
    """The observed side's two threads of control: commands in, events out."""

    def __init__(self, lab: Lab, sock: socket.socket, sender: Sender) -> None:
        self.lab = lab
        self.sock = sock
        self.sender = sender
        self.streamer = Streamer(lab, sender, os.getppid(), self._orphaned)

    def _orphaned(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def serve(self) -> bool:
        """Read commands until the viewer says quit (True) or goes away (False)."""
        self.streamer.start()
        for kind, payload in read_frames(self.sock):
            if kind != COMMAND:
                continue
            try:
                command = json.loads(payload)
            except ValueError:
                continue
            if command.get("op") == "quit":
                return True
            self.command(command)
        return False

    def command(self, command: dict[str, Any]) -> None:
        op = command.get("op")
        lab = self.lab
        try:
            if op == "start":
                lab.launch(command["key"], command["mode"], command["params"], command["run"])
            elif op == "stop":
                lab.stop(command["key"])
            elif op == "stop_run":
                lab.stop_run(command["run"])
            elif op == "adjust":
                lab.adjust(command["key"], command["name"], command["value"])
            elif op == "pin":
                lab.pin(command["cores"])
        except Exception as exc:
            if op == "start":
                self._refused(command, describe_error(exc))
            else:
                print(f"cpviz agent: {op} failed: {describe_error(exc)}", file=sys.stderr)

    def _refused(self, command: dict[str, Any], why: str) -> None:
        """A run the lab could not even queue still starts and ends, saying why."""
        now = self.lab.clock.now()
        params = tuple(sorted(dict(command.get("params") or {}).items()))
        key, mode, run = str(command.get("key")), str(command.get("mode")), int(command["run"])
        result = RunResult(key, mode, params, 0.0, 0.0, 0.0, None, None, (),
                           f"failed to start: {why}")
        self.lab.stream.put(RunStart(now, run, key, mode, params, 0))
        self.lab.stream.put(RunEnd(now, run, result))

    def shutdown(self, viewer_gone: bool = False) -> None:
        """Stop every run and pool, send what is left, and close the channel.

        With the viewer gone there is nobody to send to and nobody to clean up after this
        process: a run stuck in code that cannot be cancelled (a thread in ``time.sleep``) gets
        half a second, then everything goes, well within the two seconds promised.
        """
        self.lab.close(timeout=0.5 if viewer_gone else 2.0)
        end_descendants()
        self.streamer.stop()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fd_text = os.environ.get(CHANNEL_FD_ENV, "")
    if not fd_text.isdigit() or len(args) != 1:
        print("cpviz agent: started by cpviz itself, not by hand (no channel)", file=sys.stderr)
        return 2
    # cpviz's own thread here (it reads commands): a probe, whose stack never names a culprit.
    threading.current_thread().name = "cpviz-agent"
    sock = socket.socket(fileno=int(fd_text))
    sock.setblocking(True)
    sender = Sender(sock)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    os.register_at_fork(after_in_child=_child_signals)
    try:
        config = json.loads(args[0])
        workloads = load_workloads(config["catalogue"], config.get("user"))
        stream = EventStream(MonotonicClock(float(config["origin"])))

        def mark(at: str, run_id: int) -> None:
            sender.send(json_frame(MARK, {"run": run_id, "at": at}))

        lab = Lab(
            stream,
            threshold_s=float(config["threshold_s"]),
            workloads=workloads,
            pin_cores=config.get("pin_cores"),
            stall_s=float(config.get("stall_s", 1.0)),
            mark=mark,
            process_workers=config.get("process_workers"),
        )
        lab.start()
    except (_Quit, KeyboardInterrupt):
        return 0
    except BaseException as exc:
        sender.send(json_frame(FATAL, {"error": describe_error(exc)}))
        return 2
    agent = Agent(lab, sock, sender)
    sender.send(hello())
    asked = True
    try:
        asked = agent.serve()
    except (_Quit, KeyboardInterrupt):
        pass
    finally:
        # A second signal while shutting down must not cut the shutdown short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        agent.shutdown(viewer_gone=not asked)
    return 0


def entry() -> None:
    """``python -m cpviz.agent``: exit without waiting on threads a workload left behind."""
    code = main()
    # The pools a stopped run left behind are garbage in cycles; collecting them runs their
    # semaphores' finalizers. os._exit skips those, and the resource tracker then warns "leaked
    # semaphore objects" into the user's terminal and may be killed before it unlinks them.
    gc.collect()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
