"""Which Python the observed side runs in: ``--python PATH``, or a program's own interpreter.

One short subprocess, before anything starts, tells whether it is Python at all, which version,
whether its GIL is on, and whether it can import what the observed side will import there. It
runs with the same ``PYTHONPATH`` the observed process gets, so "can import" means exactly that
(a psutil built for another version is found but does not import). Every refusal is one line
(UsageError, exit 2) that says what to do about it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from cpviz.engine.errors import UsageError

#: The oldest interpreter the probes run in.
MIN_PYTHON = (3, 11)
#: What the lab imports inside the observed process (a program run as it is needs none of it).
LAB_NEEDS = ("anyio", "psutil", "httpx")
#: How long the check may take: a cold interpreter importing httpx on a loaded machine.
CHECK_TIMEOUT_S = 60.0

# Written so that even Python 2 gets as far as saying its version: the refusal then names it.
_PROBE = """\
import sys
sys.stdout.write('cpviz-probe %d %d\\n' % tuple(sys.version_info[:2]))
if sys.version_info >= (3, 11):
    import importlib, json
    failed = {}
    for name in sys.argv[1:]:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            failed[name] = '%s: %s' % (type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                                       else '')
    gil = getattr(sys, '_is_gil_enabled', lambda: True)()
    sys.stdout.write(json.dumps({'version': sys.version.split()[0], 'gil': bool(gil),
                                 'failed': failed}) + '\\n')
"""


@dataclass(frozen=True)
class Interpreter:
    """A Python the observed side can run in."""

    #: Its path, as found (a bare name is looked up on PATH).
    path: str
    #: Major and minor version.
    version: tuple[int, int]
    #: The full version, e.g. "3.13.0".
    release: str
    #: Whether its GIL is on (always, before free-threaded builds).
    gil: bool


def cpviz_home() -> str:
    """The directory holding the ``cpviz`` package: another interpreter finds the probes here
    (the observed process gets it on ``PYTHONPATH``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def locate(python: str) -> str:
    """The interpreter's path; UsageError when there is nothing there to run."""
    if os.sep not in python:
        found = shutil.which(python)
        if found is None:
            raise UsageError(f"no such interpreter: {python}")
        return found
    if os.path.isdir(python):
        raise UsageError(f"{python} is a directory, not a Python interpreter")
    if not os.path.exists(python):
        raise UsageError(f"no such interpreter: {python}")
    if not os.access(python, os.X_OK):
        raise UsageError(f"{python} is not executable")
    return python


def check(python: str, needs: Sequence[str] = (), *, what: str = "cpviz") -> Interpreter:
    """``python`` checked: it runs, it is Python ≥ 3.11, and it imports ``needs`` (named in the
    refusal as what ``what`` needs). UsageError otherwise, one line."""
    path = locate(python)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (cpviz_home(), env.get("PYTHONPATH")) if p)
    try:
        out = subprocess.run([path, "-c", _PROBE, *needs], capture_output=True, text=True,
                             timeout=CHECK_TIMEOUT_S, check=False, env=env,
                             stdin=subprocess.DEVNULL).stdout.splitlines()
    except subprocess.TimeoutExpired:
        raise UsageError(f"{path} did not answer within {CHECK_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise UsageError(f"cannot run {path}: {exc.strerror or exc}") from None
    head = out[0].split() if out else []
    if len(head) != 3 or head[0] != "cpviz-probe" or not (head[1] + head[2]).isdigit():
        raise UsageError(f"{path} is not a Python interpreter cpviz can run")
    version = (int(head[1]), int(head[2]))
    if version < MIN_PYTHON:
        raise UsageError(f"{path} is Python {version[0]}.{version[1]}; cpviz needs "
                         f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
    try:
        facts = json.loads(out[1])
    except (IndexError, ValueError):
        raise UsageError(f"{path} is not a Python interpreter cpviz can run") from None
    failed: dict[str, str] = facts["failed"]
    if failed:
        missing = [n for n in needs if n in failed]
        broken = [f"{n} ({failed[n]})" for n in missing
                  if not failed[n].startswith("ModuleNotFoundError")]
        said = ", ".join(missing) + (f"; {'; '.join(broken)}" if broken else "")
        them = "them" if len(missing) > 1 else "it"
        raise UsageError(f"{path} cannot import {said}, which {what} needs inside the observed "
                         f"process; install {them} with: {path} -m pip install "
                         + " ".join(missing))
    return Interpreter(path, version, str(facts["version"]), bool(facts["gil"]))
