"""``cpviz connect [ADDRESS]``: the live screen on an application that embeds the agent
(``cpviz.agent.install()``), through its socket in the user's private directory.

The application is not cpviz's: connecting starts nothing and quitting only hangs up, so it runs
on as it did. Its run's CPU is still read from outside (/proc of its pid: the same user's).
Every way this can go wrong (nothing listening, a stale socket, several to choose from, a
directory others can read, another viewer already there) is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpviz.agent.sockets import (
    check_private,
    default_dir,
    listening,
    pid_of,
    socket_path,
)
from cpviz.argtypes import duration
from cpviz.crash import EXIT_INTERRUPTED
from cpviz.engine.contract import WorkloadError, WorkloadInfo
from cpviz.engine.errors import CpvizError
from cpviz.engine.wire import FATAL, HEADER, HELLO

if TYPE_CHECKING:
    from cpviz.engine.observed import ObservedLab

#: How long an agent may take to say hello once connected.
HELLO_TIMEOUT_S = 5.0


class ConnectError(CpvizError):
    """The application cannot be reached; the message says why, in one line."""


def add_command(sub: Any, options: Any) -> None:
    """The ``connect`` subcommand (``options(name)``: the global options' parent parsers)."""
    connect = sub.add_parser(
        "connect",
        parents=options("connect"),
        help="show an application that embeds cpviz.agent.install(), live, from here",
        description=(
            "Connect to a running application that called cpviz.agent.install() and show it "
            "on the live screen. ADDRESS is its pid or its socket; with none, the only one "
            "listening. Quitting only disconnects: the application runs on."
        ),
    )
    connect.add_argument("address", nargs="?", metavar="ADDRESS",
                         help="the application's pid, or the path of its socket")
    connect.add_argument("--json", action="store_true",
                         help="no screen: watch, then print what was measured as JSON")
    connect.add_argument("--duration", type=duration, metavar="S",
                         help="with --json: disconnect after S seconds (default: at Ctrl+C)")




def find(address: str | None) -> Path:
    """The socket ``address`` names: a pid, a path, or (None) the only one listening."""
    if address is not None:
        path = socket_path(int(address)) if address.isdigit() else Path(address)
        check_private(path.parent)
        if address.isdigit() and not path.exists():
            raise ConnectError(f"no application with pid {address} is listening (no {path})")
        return path
    directory = default_dir()
    if not directory.exists():
        raise ConnectError(f"no application is listening (nothing in {directory}); call "
                           "cpviz.agent.install() in it first")
    check_private(directory)
    found = listening(directory)
    if not found:
        raise ConnectError(f"no application is listening in {directory}; call "
                           "cpviz.agent.install() in it first")
    if len(found) > 1:
        pids = ", ".join(str(pid_of(p)) for p in found)
        raise ConnectError(f"{len(found)} applications are listening (pids {pids}); name one: "
                           "cpviz connect PID")
    return found[0]


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError
        data += chunk
    return bytes(data)


def dial(path: Path) -> tuple[socket.socket, dict[str, Any]]:
    """Connect and read the agent's hello; ConnectError (one line) if that cannot be done."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HELLO_TIMEOUT_S)
        sock.connect(str(path))
        length, kind = HEADER.unpack(_exactly(sock, HEADER.size))
        if length > 1 << 20:
            raise ConnectError(f"{path} is not a cpviz agent's socket")
        payload = json.loads(_exactly(sock, length))
    except FileNotFoundError:
        sock.close()
        raise ConnectError(f"nothing is listening at {path}") from None
    except ConnectionRefusedError:
        sock.close()
        raise ConnectError(f"nothing is listening at {path} (a stale socket: its application "
                           "has exited)") from None
    except TimeoutError:
        sock.close()
        raise ConnectError(f"{path} did not answer within {HELLO_TIMEOUT_S:g} s") from None
    except (OSError, ValueError) as exc:
        sock.close()
        why = getattr(exc, "strerror", None) or "it closed the connection"
        raise ConnectError(f"cannot connect to {path}: {why}") from None
    except BaseException:
        sock.close()
        raise
    if kind == FATAL:
        sock.close()
        raise ConnectError(str(payload.get("error", "the agent refused the connection")))
    if kind != HELLO or not isinstance(payload, dict) or "origin" not in payload:
        sock.close()
        raise ConnectError(f"{path} is not a cpviz agent's socket")
    sock.settimeout(None)
    return sock, payload


class ConnectController:
    """The application as the screen's one workload: it runs on its own, so its key neither
    starts nor stops it, and nothing about it can be adjusted or pinned from here."""

    def __init__(self, lab: ObservedLab) -> None:
        assert lab.connection is not None
        self.lab = lab
        hello = lab.connection[1]
        self._info = WorkloadInfo(
            str(hello.get("name", "application")),
            f"pid {hello.get('pid')}: {hello.get('argv', '')}", ("program",), (),
            "An application that embeds cpviz's agent (cpviz.agent.install()), watched from "
            "the moment cpviz connected: each asyncio loop it runs is traced, and a freeze "
            "names its line. Quitting only disconnects; the application runs on.",
        )

    def workloads(self) -> Sequence[WorkloadInfo]:
        return [self._info]

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        if not self.lab.running():
            raise WorkloadError("the application is no longer connected; run cpviz connect "
                                "again")
        return self.lab.restart()

    def stop(self, key: str) -> None:
        """Nothing: cpviz did not start the application and does not stop it."""

    def adjust(self, key: str, name: str, value: Any) -> Any:
        raise WorkloadError("an application cpviz connected to has no live parameters")

    def pin(self, cores: int | None) -> int | None:
        raise WorkloadError("cpviz connect only watches: the application's cores are its own")

    def running(self) -> set[str]:
        return self.lab.running()

    def close(self) -> None:
        self.lab.close()


def make_lab(path: Path, args: argparse.Namespace) -> ObservedLab:
    """The application listening at ``path``, connected to (not started: that is its own)."""
    from cpviz.engine.observed import ObservedLab

    return ObservedLab((), sample_hz=args.sample_hz, connection=dial(path))


def cmd_connect(args: argparse.Namespace) -> int:
    """``cpviz connect``: the live screen, or (``--json``) what was measured while connected."""
    if args.duration is not None and not args.json:
        raise ConnectError("--duration is for --json; the live screen disconnects with q")
    path = find(args.address)
    if not args.json:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise ConnectError("the live screen needs an interactive terminal; for scripts use "
                               "'cpviz connect --json --duration S'")
        from cpviz.live import run_live

        return run_live(args, make_lab(path, args), ConnectController)
    return _headless(args, make_lab(path, args))


def _headless(args: argparse.Namespace, lab: ObservedLab) -> int:
    from cpviz.engine.headless import RunTimeout, finish, result_of
    from cpviz.engine.model import Model
    from cpviz.record_cli import finish_recording, start_recording

    recorder = start_recording(args, lab, args.argv)
    model = Model(lab.cores)
    status = 0
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        lab.start()
        finish(lab, model, 1, timeout=args.duration, stop=False)
    except RunTimeout:
        pass
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
        lab.close()
        model.apply(lab.stream.drain())
        finish_recording(recorder, lab)
    result = result_of(model, 1)
    if result is None:
        raise ConnectError("the application's run never reached cpviz")
    print(json.dumps(result))
    return status
