"""Your own code under cpviz: the alarm names your line, and mistakes get one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpviz.workloads.registry import WorkloadError
from cpviz.workloads.user import is_user_spec, load_user_workload
from tests.paths import ROOT

EXAMPLE = ROOT / "examples" / "slow_service.py"


def _line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def test_the_alarm_names_the_line_in_your_file_three_helpers_deep() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cpviz", "run", f"{EXAMPLE}:main", "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mode"] == "async" and result["outcome"] == "completed"
    assert result["tasks"] >= 31  # main plus its 30 requests, traced from the scheduler
    assert result["incidents"], "the blocking sleep was not reported"
    culprit = result["incidents"][0]
    assert Path(culprit["file"]).resolve() == EXAMPLE
    assert culprit["line"] == _line_of(EXAMPLE, "time.sleep(0.3)")
    assert culprit["function"] == "read_settings"


def test_a_plain_def_runs_in_a_thread_and_leaves_the_loop_alone(tmp_path: Path) -> None:
    script = tmp_path / "sync_job.py"
    script.write_text("import time\n\ndef job():\n    time.sleep(0.3)\n")
    out = subprocess.run(
        [sys.executable, "-m", "cpviz", "run", f"{script}:job", "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mode"] == "thread"
    assert result["incidents"] == []


@pytest.mark.parametrize(
    ("source", "name", "message"),
    [
        (None, "main", "no such file"),
        ("def a():\n    pass\n", "main", "has no function 'main'; it defines: a"),
        ("def f(x):\n    pass\n", "f", "needs arguments (x)"),
        ("def g():\n    yield 1\n", "g", "is a generator function"),
        ("class C:\n    pass\n", "C", "is a class"),
        ("VALUE = 3\n", "VALUE", "is not a function"),
        ("def f(:\n", "f", "SyntaxError at line 1"),
        ("import no_such_module_here\n", "f", "ModuleNotFoundError"),
        ("raise SystemExit(3)\n", "f", "cannot load"),
    ],
)
def test_mistakes_get_one_clear_line(
    tmp_path: Path, source: str | None, name: str, message: str
) -> None:
    script = tmp_path / "mine.py"
    if source is not None:
        script.write_text(source)
    with pytest.raises(WorkloadError) as err:
        load_user_workload(f"{script}:{name}")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_mistakes_exit_2_without_a_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cpviz", "run", f"{tmp_path}/missing.py:main"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"cpviz: error: no such file: {tmp_path}/missing.py"


def test_which_names_mean_a_file() -> None:
    assert is_user_spec("demo.py:main") and is_user_spec("src/demo.py:main")
    assert not is_user_spec("cpu:threads") and not is_user_spec("io")
