"""cpviz serve: a clear one-line message without the optional extra, and loopback only."""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import pytest

from cpviz.talk.serve import (
    EXIT_UNAVAILABLE,
    MISSING_MESSAGE,
    ServeUnavailable,
    default_command,
    main,
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
    assert "pip install 'cpviz[serve]'" in MISSING_MESSAGE


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
