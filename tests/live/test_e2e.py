"""End to end: the real program in a real pseudo-terminal, quit mid-job, nothing left behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


class Terminal:
    """A pty of a given size whose output is drained continuously (a full pty would block)."""

    def __init__(self, cols: int = 120, rows: int = 40) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)

    def _drain(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.output.extend(chunk)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpviz", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
        )
        self._reader.start()
        return proc

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def pool_workers(me: psutil.Process) -> list[psutil.Process]:
    """Worker processes below ``me`` (multiprocessing's resource tracker is not a worker)."""
    try:
        kids = me.children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for kid in kids:
        try:
            line = " ".join(kid.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in line and "resource_tracker" not in line:
            out.append(kid)
    return out


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_quitting_mid_job_restores_the_terminal_and_leaves_no_process() -> None:
    term = Terminal()
    proc = term.spawn("--start", "cpu:processes", "--set", "work=150000000")
    try:
        me = psutil.Process(proc.pid)
        _wait_for(lambda: len(pool_workers(me)) >= 1, 60, "the process pool to start")
        _wait_for(lambda: b"cpu" in term.output, 30, "the screen to draw")
        everyone = me.children(recursive=True)
        time.sleep(0.5)  # let a job get going, so the quit really is mid-job
        term.type(b"q")
        proc.wait(timeout=15)
        _, alive = psutil.wait_procs(everyone, timeout=2)
        assert alive == [], f"left running: {alive}"
        assert proc.returncode == 0
        # Textual leaves the alternate screen on exit: the terminal is given back.
        assert b"\x1b[?1049l" in term.output
        assert b"Traceback" not in term.output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        term.close()


def test_a_recorded_talk_quits_clean_and_replays(tmp_path: Path) -> None:
    """cpviz talk with --record-dir in a real terminal: step into a CPU-in-processes scene,
    quit mid-job, and find no process left, the scene recorded, and the notes socket gone."""
    deck = tmp_path / "deck.toml"
    deck.write_text(
        'title = "T"\n[[scene]]\ntitle = "Start"\n'
        '[[scene]]\ntitle = "Processes"\nworkload = "cpu"\nmode = "processes"\n'
        'params = { work = 150000000 }\n'
    )
    folder = tmp_path / "rec"
    term = Terminal()
    proc = term.spawn("talk", str(deck), "--record-dir", str(folder))
    try:
        me = psutil.Process(proc.pid)

        _wait_for(lambda: b"START" in term.output or b"\xe2\x96" in term.output, 30,
                  "the title scene to draw")
        term.type(b"\x1b[C")  # →
        _wait_for(lambda: len(pool_workers(me)) >= 1, 60, "the scene's process pool to start")
        everyone = me.children(recursive=True)
        term.type(b"q")
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(everyone, timeout=5)
        assert alive == [], f"left running: {alive}"
        assert proc.returncode == 0
        assert b"Traceback" not in term.output
        recorded = folder / "scene-02.jsonl.gz"
        assert recorded.exists()
        check = subprocess.run(
            [sys.executable, "-m", "cpviz", "replay", str(recorded), "--check", "--json"],
            capture_output=True, text=True, timeout=60,
        )
        assert check.returncode == 0, check.stderr
        assert '"cpu"' in check.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        term.close()
