"""cpviz serve: a clear one-line message without the optional extra, and loopback only."""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from typing import Any, ClassVar

import pytest

from cpviz.talk.serve import (
    EXIT_UNAVAILABLE,
    MISSING_MESSAGE,
    ServeUnavailable,
    _guarded,
    default_command,
    main,
    refusal,
    serve,
)


@pytest.fixture
def no_textual_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import textual_serve...`` fail, as on an install without the extra."""
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)


class _FakeServer:
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, command: str, **kwargs: Any) -> None:
        self.calls.append((command, kwargs))

    def serve(self, debug: bool = False) -> None:
        self.calls.append(("serve", {}))


@pytest.fixture
def fake_textual_serve(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Stand in for textual-serve, which the test environment deliberately lacks."""
    package = types.ModuleType("textual_serve")
    server = types.ModuleType("textual_serve.server")
    server.Server = _FakeServer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "textual_serve", package)
    monkeypatch.setitem(sys.modules, "textual_serve.server", server)
    _FakeServer.calls = []
    return _FakeServer.calls


def test_without_the_extra_serve_says_how_to_install_it(no_textual_serve: None) -> None:
    with pytest.raises(ServeUnavailable) as caught:
        serve("cpviz")
    assert str(caught.value) == MISSING_MESSAGE
    assert "\n" not in MISSING_MESSAGE
    # An install command that works: cpviz is not on an index, so 'cpviz[serve]' would not.
    assert "pip install 'textual-serve>=1.1'" in MISSING_MESSAGE
    assert "pip install '.[serve]'" in MISSING_MESSAGE
    assert "cpviz[serve]" not in MISSING_MESSAGE


def test_without_the_extra_main_prints_one_line_and_returns_2(
    no_textual_serve: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("cpviz") == EXIT_UNAVAILABLE == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == MISSING_MESSAGE + "\n"


def test_serve_hands_textual_serve_the_command_on_loopback(
    fake_textual_serve: list[tuple[str, dict[str, Any]]],
) -> None:
    assert serve("python -m cpviz", port=8123) == 0
    (command, kwargs), (called, _) = fake_textual_serve
    assert command == "python -m cpviz"
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert called == "serve"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", ""])
def test_serve_refuses_to_listen_beyond_this_machine(
    host: str, fake_textual_serve: list[tuple[str, dict[str, Any]]]
) -> None:
    with pytest.raises(ServeUnavailable, match=r"127\.0\.0\.1 only"):
        serve("cpviz", host=host)
    assert fake_textual_serve == []


def test_the_default_command_runs_this_pythons_cpviz() -> None:
    assert default_command().endswith(" -m cpviz")
    assert sys.executable in default_command()


# -- only its own origin and host -----------------------------------------------------------------


def test_refusal_accepts_only_this_servers_own_addresses() -> None:
    assert refusal("127.0.0.1:8000", None, 8000) is None
    assert refusal("localhost:8000", "http://localhost:8000", 8000) is None
    assert refusal("127.0.0.1:8000", "http://127.0.0.1:8000", 8000) is None
    assert refusal("evil.example:8000", None, 8000) is not None  # DNS rebinding
    assert refusal("127.0.0.1:9999", None, 8000) is not None
    assert refusal(None, None, 8000) is not None
    assert refusal("127.0.0.1:8000", "http://evil.example", 8000) is not None
    assert refusal("127.0.0.1:8000", "null", 8000) is not None
    assert refusal("127.0.0.1:8000", "https://127.0.0.1:8000", 8000) is not None


async def _exchange(port: int, lines: list[str]) -> int:
    """Send one raw HTTP request to the port; return the status code of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        return int(status.split()[1])
    finally:
        writer.close()


def test_the_real_server_answers_a_foreign_origin_or_host_with_403() -> None:
    """The real textual-serve app behind the guard, on a loopback port: a page on another
    site (its Origin) and a rebound name (its Host) are refused before anything starts."""
    aiohttp_web = pytest.importorskip("aiohttp.web")
    from textual_serve.server import Server

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]

    async def main() -> list[int]:
        server = _guarded(Server)("true", host="127.0.0.1", port=port, title="cpviz")
        runner = aiohttp_web.AppRunner(await server._make_app())
        await runner.setup()
        await aiohttp_web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            own = f"Host: 127.0.0.1:{port}"
            return [
                await _exchange(port, ["GET / HTTP/1.1", own]),
                await _exchange(port, ["GET /ws HTTP/1.1", own, "Origin: http://evil.example",
                                       *upgrade]),
                await _exchange(port, ["GET / HTTP/1.1", f"Host: evil.example:{port}"]),
                await _exchange(port, ["GET /ws HTTP/1.1", f"Host: evil.example:{port}",
                                       f"Origin: http://evil.example:{port}", *upgrade]),
            ]
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == [200, 403, 403, 403]
