"""Options wherever they are written, crashes as one line, and user code that ends its own
import: each a way cpviz used to ignore what it was told or exit 0 on a failure."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.app import App

from cpviz import cli
from cpviz.cli import _settle, build_parser, main
from cpviz.crash import EXIT_CRASH, screen_status
from cpviz.engine.clock import ManualClock
from cpviz.engine.errors import UsageError
from cpviz.engine.source import ScriptedController, ScriptedSource
from cpviz.workloads.registry import WorkloadError
from cpviz.workloads.user import inspect_user_workload
from tests.paths import FIXTURES

CPVIZ = [sys.executable, "-m", "cpviz"]


def parse(*argv: str) -> argparse.Namespace:
    args, extra = build_parser().parse_known_args(list(argv))
    _settle(args, extra)
    return args


# -- global options, before or after the subcommand -----------------------------------------------


@pytest.mark.parametrize("argv", [
    ("--cores", "1", "run", "cpu"),
    ("run", "cpu", "--cores", "1"),
])
def test_cores_is_honoured_before_or_after_run(argv: tuple[str, ...]) -> None:
    # Before the subcommand it used to be silently replaced by run's default: not pinned.
    assert parse(*argv).cores == 1


def test_every_probe_setting_is_honoured_before_the_subcommand() -> None:
    args = parse("--threshold-ms", "5000", "--sample-hz", "20", "run", "blocking")
    assert (args.threshold_ms, args.sample_hz) == (5000.0, 20.0)
    assert parse("run", "blocking").threshold_ms == 100.0  # the default where none is given
    assert parse("--threshold-ms", "300", "talk", "--check").threshold_ms == 300.0
    assert parse("--threshold-ms", "300", "bench").threshold_ms == 300.0


def test_set_is_gathered_from_both_sides_and_a_later_value_wins() -> None:
    assert parse("--set", "n=5", "run", "io").settings == [("n", "5")]
    assert parse("--set", "n=5", "run", "io", "--set", "k=2").settings == [("n", "5"),
                                                                         ("k", "2")]
    assert parse("--fps", "10", "replay", "x", "--fps", "20").fps == 20.0


def test_set_before_run_runs_that_many_calls() -> None:
    out = subprocess.run([*CPVIZ, "--set", "n=5", "run", "io", "--set", "latency_ms=10",
                          "--json"], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert '"n": 5' in out.stdout and '"latency_ms": 10.0' in out.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["--cores", "0", "run", "io"], "--cores must be from 1 to"),
    (["--cores", "999", "run", "io"], "--cores must be from 1 to"),
    (["--cores", "-1", "run", "io"], "--cores must be from 1 to"),
    (["--cores", "two", "run", "io"], "--cores must be from 1 to"),
    (["run", "io", "--cores", "0"], "--cores must be from 1 to"),
    (["--threshold-ms", "5000", "list"], "--threshold-ms does not apply to 'cpviz list'"),
    (["--cores", "1", "replay", "f.jsonl"], "--cores does not apply to 'cpviz replay'"),
    (["replay", "f.jsonl", "--cores", "1"], "--cores does not apply to 'cpviz replay'"),
    (["export", "f.jsonl", "--set", "n=1"], "--set does not apply to 'cpviz export'"),
    (["--start", "io", "run", "io"], "--start does not apply to 'cpviz run'"),
    (["--record", "x.jsonl", "bench"], "--record does not apply to 'cpviz bench'"),
    (["list", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_an_option_that_does_not_apply_is_refused_in_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `cpviz --cores 0 run io` used to exit 0, and options before the subcommand did nothing.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("cpviz: error: ")
    assert expected in err


def test_the_refusal_names_where_the_option_applies() -> None:
    with pytest.raises(UsageError, match=r"it is for: the live screen, run, bench, talk"):
        parse("--sample-hz", "5", "screenshot", "a", "b")


# -- a crash is one line and a non-zero status ----------------------------------------------------


def test_a_bug_in_a_command_is_one_line_naming_its_traceback_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(as_json: bool) -> int:
        raise ZeroDivisionError("the bug")

    monkeypatch.setattr(cli, "cmd_list", broken)
    assert main(["list"]) == EXIT_CRASH != 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("cpviz: internal error: ZeroDivisionError: the bug (a bug in cpviz;")
    saved = Path(err.split("the traceback is in ")[1].rstrip(")\n"))
    assert "Traceback" in saved.read_text() and "the bug" in saved.read_text()
    saved.unlink()


def _crashing_app() -> Any:
    from cpviz.app import CpvizApp

    source = ScriptedSource([], ManualClock(0.0), 2)
    app = CpvizApp(source, ScriptedController(()))

    def boom() -> None:
        raise RuntimeError("a widget fell over")

    app.call_after_refresh(boom)
    return app


def test_a_screen_that_crashes_exits_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = _crashing_app()
    app.run(headless=True, size=(100, 30))
    assert app.crash is not None
    assert screen_status(app) == EXIT_CRASH
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: a widget fell over" in err
    assert "Traceback" not in err
    Path(err.split("the traceback is in ")[1].rstrip(")\n")).unlink()


def test_a_replay_whose_screen_crashes_does_not_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # record_cli ignored the app's return code: a crash inside the replay screen exited 0.
    from cpviz.app import CpvizApp

    def run_headless(self: CpvizApp, **kwargs: Any) -> None:
        def boom() -> None:
            raise RuntimeError("replay fell over")

        self.call_after_refresh(boom)
        App.run(self, headless=True, size=(100, 30))

    monkeypatch.setattr(CpvizApp, "run", run_headless)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["replay", str(FIXTURES / "io.jsonl.gz")]) == EXIT_CRASH
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: replay fell over" in err
    Path(err.split("the traceback is in ")[1].split(")")[0]).unlink()


# -- user code that ends its own import -----------------------------------------------------------


@pytest.mark.parametrize(("source", "message"), [
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt while its top-level code ran"),
    ("import os\nos._exit(0)\n", "importing it ended Python with status 0"),
    ("import os\nos._exit(3)\n", "importing it ended Python with status 3"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
     "importing it killed Python with SIGKILL"),
])
def test_user_code_that_ends_its_import_is_one_line(
    tmp_path: Path, source: str, message: str
) -> None:
    # KeyboardInterrupt used to print a traceback and return -2; os._exit(0) exited 0 silently.
    script = tmp_path / "mine.py"
    script.write_text(source + "\ndef main():\n    pass\n")
    with pytest.raises(WorkloadError) as err:
        inspect_user_workload(f"{script}:main")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_os_exit_at_import_exits_2_with_one_line(tmp_path: Path) -> None:
    script = tmp_path / "quits.py"
    script.write_text("import os\nos._exit(0)\ndef main():\n    pass\n")
    out = subprocess.run([*CPVIZ, "run", f"{script}:main"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "importing it ended Python with status 0" in out.stderr


def test_a_directory_given_as_your_code_is_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "looks.py"
    folder.mkdir()
    with pytest.raises(WorkloadError, match=r"looks\.py is a directory, not a Python file"):
        inspect_user_workload(f"{folder}:main")


def test_the_viewer_never_runs_your_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "mine.py"
    script.write_text(f"open({str(marker)!r}, 'a').write(str(__import__('os').getpid()))\n"
                      "async def main():\n    pass\n")
    workload = inspect_user_workload(f"{script}:main")
    assert workload.modes == ("async",)
    assert marker.read_text() != str(os.getpid())  # it ran, in a child interpreter
