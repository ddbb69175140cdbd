"""``cpviz serve``: cpviz in a browser tab, for projectors where a terminal font is too small.

textual-serve starts the given command afresh for every browser tab that connects, so anyone who
reaches the port can run workloads on this machine. That is why it only ever listens on the
loopback interface. It is an optional extra (``pip install 'cpviz[serve]'``): most users never
need a web server, and the core install stays small.
"""

from __future__ import annotations

import shlex
import sys

MISSING_MESSAGE = "cpviz serve needs textual-serve, an optional extra: pip install 'cpviz[serve]'"
#: Exit status for the CLI when textual-serve is missing or the host is refused.
EXIT_UNAVAILABLE = 2

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ServeUnavailable(RuntimeError):
    """cpviz serve cannot run here; the message is one line that says what to do."""


def default_command() -> str:
    """The command each browser tab runs: this Python's cpviz, whatever the PATH holds."""
    return f"{shlex.quote(sys.executable)} -m cpviz"


def serve(command: str, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve ``command`` to browsers at http://host:port until interrupted; returns 0.

    Raises ``ServeUnavailable`` when textual-serve is not installed or ``host`` is not loopback.
    """
    if host not in _LOOPBACK:
        raise ServeUnavailable(
            f"cpviz serve listens on 127.0.0.1 only (each browser tab runs cpviz on this "
            f"machine), not on {host}"
        )
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ServeUnavailable(MISSING_MESSAGE) from None
    Server(command, host=host, port=port, title="cpviz").serve()
    return 0


def main(command: str | None = None, host: str = "127.0.0.1", port: int = 8000) -> int:
    """For the CLI: run ``serve``; on ``ServeUnavailable`` print its line and return 2."""
    try:
        return serve(command or default_command(), host=host, port=port)
    except ServeUnavailable as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNAVAILABLE
