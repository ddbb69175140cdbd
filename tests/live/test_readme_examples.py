"""The README's examples run as written: each command line of its examples block, headless.

The lines are read from the README itself, so the two cannot drift apart. ``--json`` is added
after ``run``/``connect`` so what each reports can be checked; nothing here asserts on time.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

BLOCK = ("<!-- examples -->", "<!-- /examples -->")


def _commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(BLOCK[0]):text.index(BLOCK[1])]
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(("cpviz ", "python "))]


def _cpviz(words: list[str]) -> list[str]:
    """The line with this checkout's interpreter in place of ``cpviz`` and ``python``."""
    out = [sys.executable, "-m", "cpviz", words[1]]
    if "--json" not in words:
        out.append("--json")
    return out + [sys.executable if w == "python" else w for w in words[2:]]


def _report(words: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(_cpviz(words), cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, (words, done.returncode, done.stderr[-2000:])
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _runs() -> list[list[str]]:
    return [words for words in _commands() if words[:2] == ["cpviz", "run"]]


def test_the_block_holds_every_promised_example() -> None:
    scripts = {Path(w).name for words in _commands() for w in words if w.endswith(".py")}
    assert {"fetch_args.py", "def_main.py", "pool_script.py", "echo_server.py",
            "trio_sleep.py", "embedded.py"} <= scripts
    assert any(words[:2] == ["cpviz", "connect"] for words in _commands())


def _script(words: list[str]) -> str:
    return next(w for w in words if w.endswith(".py"))


@pytest.mark.parametrize("words", _runs(), ids=lambda words: Path(_script(words)).name)
def test_each_run_line(words: list[str]) -> None:
    report = _report(words)
    script = _script(words)
    source = (ROOT / script).read_text()
    if "time.sleep(0.3)" in source:
        line = next(n for n, text in enumerate(source.splitlines(), 1)
                    if "time.sleep(0.3)" in text)
        assert any(inc["file"].endswith(Path(script).name) and inc["line"] == line
                   for inc in report["incidents"]), report["incidents"]
    if "Pool(" in source:
        # The workers' CPU is the program's: seconds of it, against the parent's few ms.
        assert report["cpu_s"] > 0.5
    assert report["exit_status"] == 0


def test_the_embedded_service_and_connect(tmp_path: Path) -> None:
    service = next(words for words in _commands() if words[:1] == ["python"])
    connect = next(words for words in _commands() if words[:2] == ["cpviz", "connect"])
    sockets = tmp_path / "s"
    sockets.mkdir(mode=0o700)
    env = dict(os.environ, CPVIZ_SOCKET_DIR=str(sockets), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, *service[1:]], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("serving"), proc.stderr
        report = _report(connect, env)
        source = (ROOT / service[1]).read_text()
        line = next(n for n, text in enumerate(source.splitlines(), 1) if "time.sleep(" in text)
        assert any(inc["line"] == line for inc in report["incidents"]), report["incidents"]
        assert proc.poll() is None  # leaving never stops the application
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_service_carrying_the_agent_also_runs_under_cpviz_run() -> None:
    """Its install() steps aside (cpviz's probes are in already) instead of failing it."""
    service = next(words for words in _commands() if words[:1] == ["python"])
    done = subprocess.run([sys.executable, "-m", "cpviz", "run", "--json", "--duration", "2",
                           "--", sys.executable, *service[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["outcome"] == "completed" and report["incidents"], report
    assert "install() is skipped" in done.stderr
