"""A loopback HTTP server whose every response is delayed by a fixed latency.

It runs on its own thread with its own asyncio loop, outside the lab loop, so the tracer sees only
the client's tasks, and the core lanes show its thread under the "server" role. It speaks just
enough HTTP/1.1 for keep-alive GETs; it binds 127.0.0.1 on an ephemeral port and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)


class DelayServer:
    """Start with :meth:`start` (blocking until bound), stop with :meth:`stop`."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.port = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="cpviz-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise RuntimeError(f"the loopback server could not start: {self._error}")
        if not self.port:
            raise RuntimeError("the loopback server did not start within 10 s")

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(self.latency_s)
                self.requests += 1
                writer.write(_RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Shutting down with the client still connected: end quietly rather than leave a
            # cancelled handler for asyncio's stream callback to report.
            writer.transport.abort()
            return
        writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await writer.wait_closed()


def ensure_open_files(needed: int) -> tuple[bool, int]:
    """Raise the open-files soft limit towards ``needed``; return (enough, limit now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return True, soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft >= needed, soft
