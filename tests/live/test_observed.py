"""The observer split's lifecycle, on the real machine: cpviz, its observed process, its workers.

These start real processes (``cpviz run``, the live screen under tmux, the observed process and
its pool workers). They assert what a person would see, never how long anything took; every
wait has a deadline, so a hang fails one test instead of the run.

What "nothing is left" means here: the observed process runs in a session of its own (its pid is
the session id), and everything it starts (pool workers, the resource tracker) stays in that
session; so "no live process in that session" is the check, made the moment cpviz has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cpviz.engine.accounting import end_session, session_members
from cpviz.engine.events import Event, Observed
from cpviz.engine.headless import run_to_end
from cpviz.engine.model import Model
from cpviz.engine.observed import ObservedLab
from tests.observed_catalogue import SPEC, crash_catalogue
from tests.paths import ROOT

pytestmark = pytest.mark.live

#: How often the waits below look again.
POLL_S = 0.005
#: Deadlines: generous, because CI machines are slow and shared; a pass never waits for them.
START_S = 60.0
RUN_S = 120.0
QUIT_S = 30.0
#: The issue's promise: after SIGKILL of cpviz, the observed tree is gone within 2 s.
ORPHAN_S = 2.0
#: A run long enough to be interrupted with its pool workers busy (about a minute per job).
LONG_CPU = ["cpu", "--mode", "processes", "--set", "jobs=8", "--set", "work=200000000"]
INTERRUPTED = "cpviz: interrupted; every run was stopped"
#: CPU seconds the workers must have used before a test interrupts them: they are doing jobs.
BUSY_CPU_S = 0.5


def _cpviz() -> list[str]:
    """cpviz as people start it: the venv's console script (else ``python -m cpviz``)."""
    script = Path(sys.executable).with_name("cpviz")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cpviz"]


def _wait(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(POLL_S)


def _cmdline(pid: int) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(psutil.Process(pid).cmdline())
    return "?"


def _describe(pids: list[int]) -> str:
    return "; ".join(f"{pid}: {_cmdline(pid)}" for pid in pids)


def _observed_child(viewer: int) -> int | None:
    """The viewer's child running ``python -m cpviz.agent``, if it has one yet."""
    try:
        kids = psutil.Process(viewer).children()
    except psutil.Error:
        return None
    for kid in kids:
        with contextlib.suppress(psutil.Error):
            cmd = kid.cmdline()
            if "-m" in cmd and "cpviz.agent" in cmd:
                return kid.pid
    return None


def _workers(sid: int) -> list[int]:
    """The observed side's worker processes: its session, less itself and the resource tracker."""
    return [
        pid for pid in session_members(sid)
        if pid != sid and "resource_tracker" not in _cmdline(pid)
    ]


def _busy_workers(sid: int) -> bool:
    """Whether the observed side's workers are at work: started, and past their start-up's CPU
    (a spawned worker spends about 0.1 s importing; the jobs here take seconds)."""
    used = 0.0
    for pid in _workers(sid):
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            used += times.user + times.system
    return used >= BUSY_CPU_S


class Viewer:
    """A ``cpviz`` process started by a test, and the observed session it leads to."""

    def __init__(self, args: list[str]) -> None:
        self.popen = subprocess.Popen(
            [*_cpviz(), *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.sid: int | None = None

    def find_observed(self, *, with_workers: bool = False) -> int:
        """The observed process's pid (= its session id), once it (and a worker) runs."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                out, err = self.popen.communicate(timeout=QUIT_S)
                raise AssertionError(
                    f"cpviz ended (status {self.popen.returncode}) before the observed side was "
                    f"seen{' with workers' if with_workers else ''}:\n{err.decode()}{out.decode()}"
                )
            pid = self.sid or _observed_child(self.popen.pid)
            if pid is not None:
                self.sid = pid
                if not with_workers or _busy_workers(pid):
                    return pid
            time.sleep(POLL_S)
        raise AssertionError(
            f"no observed process{' with workers' if with_workers else ''} within {START_S:g} s"
        )

    def finish(self) -> tuple[int, str, str]:
        """Wait (bounded) for cpviz to exit; its status, stdout and stderr."""
        try:
            out, err = self.popen.communicate(timeout=QUIT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate(timeout=QUIT_S)
            raise AssertionError(
                f"cpviz did not exit within {QUIT_S:g} s:\n{err.decode()}"
            ) from None
        return self.popen.returncode, out.decode(), err.decode()

    def cleanup(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.communicate(timeout=QUIT_S)
        if self.sid is not None:
            end_session(self.sid)


@contextlib.contextmanager
def viewer(args: list[str]) -> Iterator[Viewer]:
    v = Viewer(args)
    try:
        yield v
    finally:
        v.cleanup()


def _assert_session_gone(sid: int, when: str) -> None:
    left = session_members(sid)
    assert not left, f"{when}, the observed session {sid} still had: {_describe(left)}"


# -- 1. sniffio ---------------------------------------------------------------------------------


def test_run_completes_where_sniffio_is_importable() -> None:
    # anyio behaves differently once sniffio can be imported; cpviz once hung there forever.
    try:
        import sniffio  # noqa: F401
    except ImportError:
        pytest.fail(
            "sniffio is not installed: it belongs in the test extra (pyproject.toml), because "
            "this test must run where anyio can import it"
        )
    with viewer(["run", "io", "--json"]) as v:
        try:
            out, err = v.popen.communicate(timeout=RUN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"cpviz run io --json did not end within {RUN_S:g} s (the sniffio hang?)"
            ) from None
    assert v.popen.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["workload"] == "io"
    assert result["outcome"] == "completed"
    assert result["tasks"] > 0  # the probes saw the run's tasks: it really ran


# -- 2. the end of cpviz run, normal or interrupted -----------------------------------------------


def test_nothing_outlives_a_run_that_ends() -> None:
    # Long enough (seconds) to see its workers, short enough to finish.
    args = ["run", "cpu", "--mode", "processes", "--set", "jobs=4", "--set", "work=30000000",
            "--json"]
    with viewer(args) as v:
        sid = v.find_observed(with_workers=True)
        assert os.getsid(sid) == sid, "the observed process is not in a session of its own"
        try:
            out, err = v.popen.communicate(timeout=RUN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run did not end within {RUN_S:g} s") from None
        _assert_session_gone(sid, "the moment cpviz run ended")
    assert v.popen.returncode == 0, err.decode()
    assert json.loads(out)["outcome"] == "completed"
    assert err.decode() == "", "cpviz run printed on stderr"


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
def test_nothing_outlives_an_interrupted_run(signum: int, status: int) -> None:
    with viewer(["run", *LONG_CPU]) as v:
        sid = v.find_observed(with_workers=True)
        v.popen.send_signal(signum)
        code, out, err = v.finish()
        _assert_session_gone(sid, f"the moment cpviz exited after {signal.Signals(signum).name}")
    assert code == status, err
    assert out == ""
    # One line that says what happened: no traceback, no warning from a worker or the resource
    # tracker leaking into the user's terminal.
    assert err.splitlines() == [INTERRUPTED], err


# -- 3. the viewer SIGKILLed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "with_workers"),
    [
        (["run", *LONG_CPU], True),
        # The program's own child, stuck waiting: no cpviz code runs in it to notice.
        (["run", "tests/corpus/stuck_child.py:main"], False),
    ],
    ids=["pool-workers", "a-stuck-child-of-the-program"],
)
def test_observed_tree_ends_after_viewer_is_killed(args: list[str], with_workers: bool) -> None:
    with viewer(args) as v:
        sid = v.find_observed(with_workers=with_workers)
        if not with_workers:
            # The observed process, its resource tracker, and the program's child.
            _wait("the program's child", lambda: len(session_members(sid)) >= 3, START_S)
        v.popen.kill()
        killed = time.monotonic()
        v.popen.wait(timeout=QUIT_S)
        left = session_members(sid)
        while left and time.monotonic() - killed < ORPHAN_S:
            time.sleep(POLL_S)
            left = session_members(sid)
        assert not left, (
            f"{ORPHAN_S:g} s after cpviz was SIGKILLed, its observed session still had: "
            f"{_describe(left)}"
        )
        # The observed side's output reached this pipe only through the viewer; nothing of that
        # side may hold it directly, or it could print into the user's terminal after the kill
        # (and the pipe would not close).
        try:
            out, err = v.popen.communicate(timeout=QUIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError("cpviz's stderr stayed open after it was killed") from None
    assert v.popen.returncode == -signal.SIGKILL
    assert err.decode() == "", err.decode()
    assert out.decode() == ""


# -- 4. the observed side crashing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "how", "status"),
    [
        ("exit3", "exited with status 3", 3),
        ("segfault", "killed by SIGSEGV", -signal.SIGSEGV),
        ("oom-killed", "killed by SIGKILL", -signal.SIGKILL),
    ],
)
def test_a_crash_is_told_and_the_next_run_gets_a_fresh_observed_process(
    key: str, how: str, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The observed process imports the catalogue by name, whatever directory pytest runs in.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    seen: list[Event] = []
    with ObservedLab(crash_catalogue(), catalogue=SPEC) as lab:
        lab.stream.add_tap(seen.extend)
        model = Model(lab.cores)
        first = lab.pid
        assert first is not None

        result = run_to_end(lab, model, lab.launch(key, None, {}), timeout=RUN_S)
        assert result["outcome"].startswith("failed: the observed process "), result
        assert how in result["outcome"], result["outcome"]
        exited = [e for e in seen if isinstance(e, Observed) and e.what == "exited"]
        assert [(e.pid, e.status) for e in exited] == [(first, status)], exited
        assert how in exited[0].detail
        _assert_session_gone(first, "after the observed process crashed")

        # The viewer stays usable: the next run starts a fresh observed process and completes.
        result = run_to_end(lab, model, lab.launch("fine", None, {}), timeout=RUN_S)
        assert result["outcome"] == "completed", result
        second = lab.pid
        assert second is not None
        assert second != first
    _assert_session_gone(second, "after the lab closed")


# -- 5. the live screen under tmux ----------------------------------------------------------------


class Tmux:
    """One tmux server of the test's own (its own socket), one session, one pane."""

    def __init__(self) -> None:
        self.socket = f"cpviz-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "cpviz"
        self.path = ""

    def start(self, command: str) -> None:
        self.tmux(
            "new-session", "-d", "-s", self.session, "-x", "120", "-y", "40",
            # After cpviz: its exit status, then the pane stays for the test to read.
            f"{command}; echo CPVIZ-EXIT=$?; sleep 120",
        )
        self.path = self.show("#{socket_path}")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def show(self, what: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.session, what).strip()

    def wait_for(self, what: str, probe: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not probe(screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s; the pane:\n{screen}")
            time.sleep(0.05)
            screen = self.screen()

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.tmux("kill-server")
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _viewer_in(pane_pid: int) -> int | None:
    """The cpviz process the pane's shell started."""
    with contextlib.suppress(psutil.Error):
        for kid in psutil.Process(pane_pid).children():
            if "cpviz" in " ".join(kid.cmdline()):
                return kid.pid
    return None


def _exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize(
    ("args", "quit_with"),
    [
        ([], "q"),  # press 2 (cpu), then q
        (["--start", "cpu:processes", *LONG_CPU[3:]], "q"),
        (["--start", "cpu:processes", *LONG_CPU[3:]], "C-c"),
        (["--start", "cpu:processes", *LONG_CPU[3:]], "SIGTERM"),
    ],
    ids=["key-2-then-q", "workers-q", "workers-ctrl-c", "workers-SIGTERM"],
)
def test_the_live_screen_quits_with_nothing_left(args: list[str], quit_with: str) -> None:
    command = shlex.join([*_cpviz(), *args])
    tmux = Tmux()
    sid: int | None = None
    try:
        tmux.start(f"cd {shlex.quote(str(ROOT))} && {command}")
        tmux.wait_for("the screen", lambda s: "cpviz" in s and "quit" in s, START_S)
        pane = int(tmux.show("#{pane_pid}"))
        holder: list[int] = []

        def found() -> bool:
            pid = _viewer_in(pane)
            if pid is not None:
                holder.append(pid)
            return pid is not None

        _wait("the cpviz process in the pane", found, START_S)
        cpviz = holder[-1]

        def observed() -> bool:
            pid = _observed_child(cpviz)
            if pid is not None:
                holder.append(pid)
            return pid is not None

        _wait("the observed process", observed, START_S)
        sid = holder[-1]
        assert os.getsid(sid) == sid, "the observed process is not in a session of its own"
        if args:
            _wait("the run's pool workers at work", lambda: _busy_workers(sid or 0), START_S)
        else:
            tmux.tmux("send-keys", "-t", tmux.session, "2")
            # The run is listed while it goes, and its result stays once it has ended.
            tmux.wait_for(
                "the cpu run to start",
                lambda s: "no runs in progress" not in s or "no results yet" not in s,
                START_S,
            )

        if quit_with == "SIGTERM":
            os.kill(cpviz, signal.SIGTERM)
        else:
            tmux.tmux("send-keys", "-t", tmux.session, quit_with)
        _wait("cpviz to exit", lambda: _exited(cpviz), QUIT_S)
        _assert_session_gone(sid, f"the moment cpviz exited after {quit_with}")

        tmux.wait_for("the shell after cpviz", lambda s: "CPVIZ-EXIT=" in s, QUIT_S)
        screen = tmux.screen()
        assert "CPVIZ-EXIT=0" in screen, screen
        # The terminal is given back: off the alternate screen, nothing of the app left on it.
        assert tmux.show("#{alternate_on}") == "0"
        assert "quit" not in screen, screen
    finally:
        tmux.close()
        if sid is not None:
            end_session(sid)
