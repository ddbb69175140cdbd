"""An application that embeds the agent (``cpviz.agent.install()``), watched with ``cpviz
connect`` from another process, as a person would: connect, see the freeze at its line, leave,
and find the application still running; connect again; and every way of getting it wrong is one
line and exit status 2. Nothing here asserts on how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpviz.engine.recording.index import scan
from tests.paths import ROOT

CPVIZ = [sys.executable, "-m", "cpviz"]

APP = '''
import asyncio, sys, time
import cpviz.agent


async def ticker() -> None:
    while True:
        await asyncio.sleep(0.02)


async def main() -> None:
    agent = cpviz.agent.install(flight_s=float(sys.argv[2]), flight_path=sys.argv[1])
    print("listening", agent.address, flush=True)
    task = asyncio.create_task(ticker())
    while True:
        await asyncio.sleep(0.4)
        time.sleep(0.3)  # BLOCKS


asyncio.run(main())
'''


def _line(source: str, marker: str) -> int:
    return next(n for n, text in enumerate(source.splitlines(), 1) if marker in text)


@pytest.fixture
def sockets(tmp_path: Path) -> Path:
    directory = tmp_path / "s"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture(params=[30.0], ids=["flight"])
def app(request: pytest.FixtureRequest, tmp_path: Path,
        sockets: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The application, running and listening (with a flight recorder of ``request.param``
    seconds; 0: none, so its probes sleep until a viewer comes); killed afterwards."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = dict(os.environ, CPVIZ_SOCKET_DIR=str(sockets), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "flight.jsonl"),
                             str(request.param)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("listening"), proc.stderr.read() if proc.stderr else first
        yield proc, script
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _connect(sockets: Path, *args: str,
             status: int | None = 0) -> subprocess.CompletedProcess[str]:
    """``cpviz connect`` with this socket directory; its exit status checked unless None."""
    env = dict(os.environ, CPVIZ_SOCKET_DIR=str(sockets))
    out = subprocess.run([*CPVIZ, "connect", *args], capture_output=True, text=True, env=env,
                         timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert status is None or out.returncode == status, out.stderr
    return out


def _watch(sockets: Path, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        _connect(sockets, "--json", "--duration", "1.5", *args).stdout)
    return report


@pytest.mark.parametrize("app", [0.0, 30.0], ids=["asleep", "flight"], indirect=True)
def test_connect_sees_the_freeze_at_its_line_and_leaves_the_app_running(
    app: tuple[subprocess.Popen[str], Path], sockets: Path,
) -> None:
    proc, script = app
    result = _watch(sockets)  # the only socket in the directory
    assert result["outcome"].startswith("disconnected")
    assert result["tasks"] >= 2 and result["steps"] > 0
    assert result["incidents"], result
    incident = result["incidents"][0]
    assert incident["blocking_call"] == "time.sleep"
    assert Path(incident["file"]).name == script.name
    assert incident["line"] == _line(APP, "# BLOCKS")
    assert result["cpu_s"] > 0  # read from outside, from /proc of the application's pid
    assert proc.poll() is None, "disconnecting must leave the application running"
    again = _watch(sockets, str(proc.pid))  # and a later viewer gets in, by pid this time
    assert again["incidents"] and again["steps"] > 0
    assert proc.poll() is None


def test_one_viewer_at_a_time(app: tuple[subprocess.Popen[str], Path], sockets: Path) -> None:
    proc, _script = app
    env = dict(os.environ, CPVIZ_SOCKET_DIR=str(sockets))

    def first_viewer() -> subprocess.Popen[str]:
        return subprocess.Popen([*CPVIZ, "connect", "--json", "--duration", "60"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT)

    first = first_viewer()
    try:
        deadline = time.monotonic() + 60
        while True:  # until the first viewer is in and a second is turned away
            out = _connect(sockets, "--json", "--duration", "0.2", status=None)
            if out.returncode == 2 and first.poll() is None:
                break
            if first.poll() is not None:
                # A probe of ours held the one place when the first came (a slow start on a
                # busy machine), so the first was turned away: it tries again.
                first.communicate(timeout=10)
                first = first_viewer()
            assert time.monotonic() < deadline, "the first viewer never got in"
        assert "another viewer" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGINT)  # as Ctrl+C: it disconnects and reports
        first.communicate(timeout=60)
    assert first.returncode in (0, 130) and proc.poll() is None


def test_the_flight_recorder_writes_a_recording_on_sigusr2(
    app: tuple[subprocess.Popen[str], Path], tmp_path: Path,
) -> None:
    proc, _script = app
    time.sleep(1.0)  # a freeze or two into the window
    proc.send_signal(signal.SIGUSR2)
    path = tmp_path / "flight.jsonl"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "no flight recording was written"
        time.sleep(0.05)
    index = scan(str(path))  # every line read and validated, as replay --check does
    assert index.freezes >= 1 and index.runs
    check = subprocess.run([*CPVIZ, "replay", "--check", str(path)], capture_output=True,
                           text=True, timeout=60, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    assert proc.poll() is None


def test_nothing_listening_is_one_line_and_status_2(sockets: Path) -> None:
    out = _connect(sockets, "--json", status=2)
    assert len(out.stderr.strip().splitlines()) == 1 and "no application" in out.stderr
    out = _connect(sockets, "--json", "999999", status=2)
    assert len(out.stderr.strip().splitlines()) == 1 and "999999" in out.stderr
    stale = sockets / "424242.sock"  # a socket whose application died without closing it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()
    out = _connect(sockets, "--json", str(stale), status=2)
    assert "stale" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_directory_others_can_read_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    out = _connect(open_dir, "--json", status=2)
    assert "chmod 700" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    code = ("import cpviz.agent\n"
            "from cpviz.agent.sockets import UnsafeDirectory\n"
            "try:\n    cpviz.agent.install()\n"
            "except UnsafeDirectory as exc:\n    print('refused:', exc)\n")
    env = dict(os.environ, CPVIZ_SOCKET_DIR=str(open_dir), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("refused:"), run.stderr
    assert list(open_dir.iterdir()) == []
