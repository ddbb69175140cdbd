"""``--python PATH``: the observed side under another interpreter, for the lab, ``cpviz bench``
and a program run as it is; and every interpreter that cannot serve refused in one line.

The other interpreter is a pyenv Python of another version where this machine has one, in a
venv that sees this checkout's packages (anyio, httpx and psutil's abi3 build work on any
3.x), so nothing is downloaded.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from cpviz.engine.observed import ObservedLab
from tests.paths import ROOT

CPVIZ = [sys.executable, "-m", "cpviz"]
#: The README's examples: ordinary programs too, and the tests keep them working.
EXAMPLES = ROOT / "examples"
PYENV = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv")) + "/versions"


def _cpviz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CPVIZ, *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def _pyenv(*versions: str) -> str | None:
    for version in versions:
        for path in sorted(glob.glob(f"{PYENV}/{version}*/bin/python"), reverse=True):
            if os.access(path, os.X_OK):
                return path
    return None


def _venv(base: str, where: Path, *, see_ours: bool) -> str:
    """A venv of ``base`` without pip; ``see_ours``: it imports this checkout's packages."""
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = str(where / "bin" / "python")
    if see_ours:
        site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "cpviz-test.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def other_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python ≥ 3.11 of another version than this one, that can run the lab."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = _pyenv(*(v for v in ("3.13", "3.12", "3.14", "3.11") if v != mine))
    if base is None:
        pytest.skip("no other Python >= 3.11 here (pyenv)")
    python = _venv(base, tmp_path_factory.mktemp("other") / "venv", see_ours=True)
    if subprocess.run([python, "-c", "import anyio, httpx, psutil"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"{base} cannot import this checkout's anyio, httpx and psutil")
    return python


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This interpreter's base in a venv with nothing installed."""
    base = getattr(sys, "_base_executable", sys.executable)
    return _venv(base, tmp_path_factory.mktemp("bare") / "venv", see_ours=False)


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _refused(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("cpviz: error: ") and "Traceback" not in out.stderr
    for needle in needles:
        assert needle in line


def _fake_python(where: Path, version: str) -> str:
    """A stand-in that answers the check as a Python of ``version`` would."""
    path = where / f"python{version}"
    major, minor = version.split(".")
    path.write_text(f"#!/bin/sh\necho 'cpviz-probe {major} {minor}'\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("command", [["run", "io"], ["bench", "--quick"], ["run"]])
@pytest.mark.parametrize("kind", ["ls", "missing", "directory", "old", "python2", "python3.10"])
def test_an_interpreter_that_cannot_serve_is_one_line_and_status_2(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    python = {
        "ls": "/bin/ls",
        "missing": str(tmp_path / "nonexistent"),
        "directory": str(tmp_path),
        "old": _fake_python(tmp_path, "3.10"),
        "python2": _pyenv("2."),
        "python3.10": _pyenv("3.10", "3.9", "3.8"),
    }[kind]
    if python is None:
        pytest.skip(f"no {kind} here")
    said = {"ls": "is not a Python interpreter", "missing": "no such interpreter",
            "directory": "is a directory", "old": "is Python 3.10; cpviz needs 3.11",
            "python2": "is Python 2.", "python3.10": "cpviz needs 3.11 or newer"}[kind]
    if command == ["run"]:  # a program run as it is, its interpreter on its command line
        args = ["run", "--json", "--", python, str(EXAMPLES / "def_main.py")]
    else:
        args = [*command, "--json", "--python", python]
    _refused(_cpviz(*args), said)


@pytest.mark.parametrize("command", [["run", "io"], ["bench", "--quick"]])
def test_a_python_without_the_labs_packages_says_what_to_install(
    bare_python: str, command: list[str]
) -> None:
    out = _cpviz(*command, "--python", bare_python)
    _refused(out, "cannot import anyio, psutil, httpx", "the lab needs",
             f"{bare_python} -m pip install anyio psutil httpx")


def test_a_program_needs_nothing_installed_and_still_gets_every_probe(
    bare_python: str,
) -> None:
    """The probes of a program are the standard library's: its freeze is named, and the
    no-progress detector runs without anyio or psutil there."""
    path = EXAMPLES / "def_main.py"
    out = _cpviz("run", "--json", "--", bare_python, str(path))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["python"] == _version(bare_python)
    (incident,) = result["incidents"]
    assert incident["function"] == "amain" and incident["blocking_call"] == "time.sleep"
    assert "stall_detected_s" not in result
    assert "cpviz" not in out.stderr  # no probe complained


def test_the_lab_runs_under_another_python_and_the_json_says_which(other_python: str) -> None:
    out = _cpviz("run", "io", "--json", "--set", "n=20", "--python", other_python)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["outcome"] == "completed" and result["tasks"] >= 21
    assert result["python"] == _version(other_python) != sys.version.split()[0]
    assert isinstance(result["gil"], bool)


def test_bench_says_which_interpreter_ran_its_rows(
    other_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cpviz import proof

    row = proof.Row("I/O", "io", "concurrent", {"n": 20, "latency_ms": 50}, label="io")
    monkeypatch.setattr(proof, "plan", lambda cores, quick: [row])
    report: dict[str, Any] = proof.run_bench(ObservedLab(_catalogue(), python=other_python),
                                             quick=True)
    assert report["interpreter"] == other_python
    assert report["python"] == _version(other_python)
    assert isinstance(report["gil"], bool)
    (measured,) = report["rows"]
    assert measured["outcome"] == "completed"
    assert measured["extra"]["python"] == report["python"]


def _catalogue() -> Any:
    from cpviz.workloads.registry import catalogue

    return catalogue()
