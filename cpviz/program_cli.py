"""Your program as you run it: ``cpviz run -- python app.py args…`` and ``cpviz run app.py``.

cpviz's own options go before ``--``; everything after it is the program's command line, which
runs unchanged as the observed process (:mod:`cpviz.agent.boot`). Headless, the program's
output goes to stderr (or ``--output FILE``), so ``--json`` on stdout stays parseable; Ctrl+C,
the end of ``--duration`` and the program's own end each print what was measured until then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from cpviz.crash import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, terminate
from cpviz.engine.errors import UsageError
from cpviz.interpreters import check as check_interpreter

if TYPE_CHECKING:
    from cpviz.engine.model import Model
    from cpviz.engine.observed import ObservedLab

#: How long a program gets to end after Ctrl+C or --duration before it is killed.
GRACE_S = 10.0
#: ``cpviz run`` options that take a value (the short form's script is the first other word).
VALUED = frozenset({"--mode", "--set", "--record", "--record-max-mb", "--threshold-ms",
                    "--sample-hz", "--cores", "--duration", "--output", "--python"})


@dataclass(frozen=True)
class Program:
    """A program's command line: the interpreter, and ``[script, args…]`` or
    ``["-m", module, args…]``."""

    python: str
    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.argv[1] if self.argv[0] == "-m" else os.path.basename(self.argv[0])


def split_program(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """cpviz's words and the program's: at ``--``, or (``run``) at the first ``.py`` file that
    names no function (``file.py:function`` is the older, one-function form)."""
    words = list(argv)
    if "--" in words:
        at = words.index("--")
        return words[:at], words[at + 1 :]
    if "run" not in words:
        return words, None
    i = words.index("run") + 1
    while i < len(words):
        word = words[i]
        if word in VALUED:
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        if word.endswith(".py") and ":" not in word:
            return words[:i], words[i:]
        return words, None
    return words, None


def resolve(words: Sequence[str], python: str | None = None) -> Program:
    """The program a command line names, checked: UsageError (exit 2) for what cannot run."""
    words = list(words)
    if not words:
        raise UsageError("nothing after '--': give the program, e.g. -- python app.py")
    interpreter = python
    if not (words[0].endswith(".py") or words[0] == "-m"):
        interpreter, words = words[0], words[1:]
    if not words:
        raise UsageError("no script after the interpreter: give python app.py or "
                         "python -m module")
    if words[0].startswith("-") and words[0] != "-m":
        raise UsageError(f"interpreter option {words[0]} is not supported; cpviz runs "
                         "python SCRIPT [args] or python -m MODULE [args]")
    if words[0] == "-m" and len(words) < 2:
        raise UsageError("-m needs a module name, e.g. -- python -m mypackage.main")
    # The probes of a program need the standard library only: any Python >= 3.11 will do.
    interpreter = check_interpreter(interpreter or sys.executable).path
    if words[0] == "-m":
        _check_module(interpreter, words[1])
    elif os.path.isdir(words[0]):
        raise UsageError(f"{words[0]} is a directory, not a script")
    elif not os.path.isfile(words[0]):
        raise UsageError(f"no such file: {words[0]}")
    return Program(interpreter, tuple(words))


def _check_module(python: str, module: str) -> None:
    code = ("import importlib.util, sys\n"
            "try:\n    found = importlib.util.find_spec(sys.argv[1])\n"
            "except Exception:\n    found = None\n"
            "sys.exit(0 if found else 3)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    try:
        found = subprocess.run([python, "-c", code, module], env=env, timeout=60,
                               capture_output=True, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        found = False
    if not found:
        raise UsageError(f"no module named {module!r} for {python}")


def run_program(lab: ObservedLab, model: Model, duration: float | None) -> tuple[dict[str, Any],
                                                                                int | None]:
    """Run the program to its end, Ctrl+C or ``duration``; its result and how it was cut short
    (the exit status cpviz should give: 130, 143, or None when it ended by itself)."""
    from cpviz.engine.headless import RunTimeout, finish, result_of

    cut: int | None = None
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    try:
        try:
            finish(lab, model, 1, timeout=duration, stop=False)
        except RunTimeout:
            cut = 0  # --duration: the program is asked to stop like Ctrl+C would
        except KeyboardInterrupt:
            cut = EXIT_INTERRUPTED
        except Terminated:
            cut = EXIT_TERMINATED
        if cut is not None:
            lab.interrupt()
            try:
                finish(lab, model, 1, timeout=GRACE_S, stop=False)
            except (RunTimeout, KeyboardInterrupt, Terminated):
                lab.close()  # it would not stop: the run ends as killed
                model.apply(lab.stream.drain())
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    result = result_of(model, 1)
    if result is None:
        raise UsageError("the program's run never ended (no result reached cpviz)")
    if cut == 0:
        result["ended_by"] = f"--duration {duration:g}"
    elif cut is not None:
        result["ended_by"] = "Ctrl+C" if cut == EXIT_INTERRUPTED else "SIGTERM"
    return result, (None if cut == 0 else cut)


def exit_status(result: dict[str, Any], cut: int | None) -> int:
    """cpviz's status: the interrupt's, else the program's own."""
    if cut is not None:
        return cut
    status = result.get("exit_status")
    if isinstance(status, int):
        return status
    return 0 if result["outcome"] == "completed" else 1


def open_output(path: str | None) -> TextIO:
    """Where the program's own output goes headless: a file, or stderr."""
    if path is None:
        return sys.stderr
    try:
        return open(path, "w", encoding="utf-8")  # closed by the caller
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result)


def make_lab(args: Any, program: Program, *, headless: bool, output: TextIO | None) -> ObservedLab:
    """The observed side for ``program`` with the command line's probe settings."""
    from cpviz.engine.observed import ObservedLab

    try:
        return ObservedLab(
            (),
            threshold_s=args.threshold_ms / 1000.0,
            sample_hz=args.sample_hz,
            pin_cores=getattr(args, "cores", None),
            program=list(program.argv),
            python=program.python,
            output=output,
            # Headless, the program reads the terminal's stdin as it would without cpviz; the
            # live screen owns the terminal, so there it reads nothing.
            stdin=headless,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_run_program(args: Any, words: Sequence[str], print_result: Any) -> int:
    """``cpviz run [options] -- python app.py args…``: headless, the result on stdout."""
    from cpviz.engine.model import Model
    from cpviz.record_cli import finish_recording, start_recording

    program = resolve(words, getattr(args, "python", None))
    output = open_output(getattr(args, "output", None))
    lab = make_lab(args, program, headless=True, output=output)
    recorder = start_recording(args, lab, args.argv)
    model = Model(lab.cores)
    try:
        lab.start()
        result, cut = run_program(lab, model, getattr(args, "duration", None))
    finally:
        lab.close()
        finish_recording(recorder, lab)
        if output is not sys.stderr:
            output.close()
    if args.json:
        print(dumps(result))
    else:
        print_result(result)
        if result.get("last_frames"):
            print("last frames:\n  " + "\n  ".join(result["last_frames"]))
    return exit_status(result, cut)


def cmd_tui_program(args: Any, words: Sequence[str]) -> int:
    """``cpviz -- python app.py args…``: the live screen on the program as it runs."""
    from cpviz.engine.observed import ProgramController
    from cpviz.live import run_live

    program = resolve(words, getattr(args, "python", None))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the live screen needs an interactive terminal; for scripts use "
                         "'cpviz run --json -- python app.py'")
    return run_live(args, make_lab(args, program, headless=False, output=None),
                    ProgramController)
