"""``cpviz serve``: cpviz in a browser tab, for projectors where a terminal font is too small.

textual-serve starts the given command afresh for every browser tab that connects, so anyone who
reaches the port can run workloads on this machine. That is why it only ever listens on the
loopback interface, and why it answers only requests addressed to itself: a web page open in the
same browser can send requests to 127.0.0.1 (a WebSocket is not bound by the same-origin rule),
and DNS rebinding can make a foreign name resolve to it. So every request must carry
``Host: 127.0.0.1:PORT`` (or ``localhost``, ``[::1]``), and any ``Origin`` must be one of those;
anything else gets 403 before textual-serve sees it. It is an optional extra: most users never
need a web server, and the core install stays small.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

MISSING_MESSAGE = (
    "cpviz serve needs textual-serve, an optional extra: pip install 'textual-serve>=1.1' "
    "into cpviz's environment (from a checkout of cpviz: pip install '.[serve]')"
)
#: Exit status for the CLI when textual-serve is missing or the host is refused.
EXIT_UNAVAILABLE = 2

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ServeUnavailable(RuntimeError):
    """cpviz serve cannot run here; the message is one line that says what to do."""


def refusal(host: str | None, origin: str | None, port: int) -> str | None:
    """Why a request must be refused with 403, or None when it is addressed to this server
    (``Host``) from one of its own pages or from no page at all (``Origin``)."""
    names = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    if port == 80:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if host is None or host.strip().lower() not in names:
        return f"cpviz serve answers only requests for 127.0.0.1:{port}, not Host {host!r}"
    if origin is not None and origin.strip().lower() not in {f"http://{n}" for n in names}:
        return f"cpviz serve answers only its own pages, not Origin {origin!r}"
    return None


def _guarded(server_class: type[Any]) -> type[Any]:
    """textual-serve's Server, with every request checked by :func:`refusal` first."""

    class GuardedServer(server_class):  # type: ignore[misc]
        async def _make_app(self) -> Any:
            from aiohttp import web

            app = await super()._make_app()
            port = self.port

            @web.middleware
            async def guard(request: Any, handler: Any) -> Any:
                reason = refusal(request.headers.get("Host"), request.headers.get("Origin"),
                                 port)
                if reason is not None:
                    return web.Response(status=403, text=reason + "\n")
                return await handler(request)

            app.middlewares.append(guard)
            return app

    return GuardedServer


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
    _guarded(Server)(command, host=host, port=port, title="cpviz").serve()
    return 0


def main(command: str | None = None, host: str = "127.0.0.1", port: int = 8000) -> int:
    """For the CLI: run ``serve``; on ``ServeUnavailable`` print its line and return 2."""
    try:
        return serve(command or default_command(), host=host, port=port)
    except ServeUnavailable as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNAVAILABLE
