"""Your own code as a workload: ``cpviz run path/to/file.py:function``.

The file is loaded as a module of its own in the observed process, where the function runs; its
top-level code runs then, exactly as ``python file.py`` would run it minus the ``__main__`` block.
The viewer never runs your code: :func:`inspect_user_workload` loads and checks the file in a
child interpreter of its own, so whatever its top-level code does (``os._exit(0)``, a segfault,
``KeyboardInterrupt``) becomes one line saying so, not a vanished or hung cpviz. The function runs
inside the lab with every probe on: an ``async def`` on the lab's event loop, a plain ``def`` in a
worker thread. Nothing about it is reported by the function itself, so any function works
unchanged. Frames in the user's file count as user code, so the blocking alarm names the line in
*their* file, even several helper calls below the function.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import anyio

from cpviz.engine.contract import RunContext, Workload, WorkloadError


def is_user_spec(spec: str) -> bool:
    """Whether a workload name on the command line points at a file rather than the catalogue."""
    path = spec.rpartition(":")[0] if ":" in spec else spec
    return path.endswith(".py") or os.sep in path


def _split(spec: str) -> tuple[str, str]:
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.strip():
        raise WorkloadError(
            f"expected path/to/file.py:function, got {spec!r} (name the function to run "
            "after a colon)"
        )
    return path, name.strip()


def _check_path(path: str) -> None:
    if os.path.isdir(path):
        raise WorkloadError(f"{path} is a directory, not a Python file")
    if not os.path.isfile(path):
        raise WorkloadError(f"no such file: {path}")
    if not path.endswith(".py"):
        raise WorkloadError(f"{path} is not a Python file (expected a name ending in .py)")


def _load(path: str) -> ModuleType:
    _check_path(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = f"cpviz_user_{stem}" if stem.isidentifier() else "cpviz_user_module"
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise WorkloadError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Its own directory comes first, as for ``python file.py``, so its sibling imports work.
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise WorkloadError(
            f"cannot load {path}: SyntaxError at line {exc.lineno}: {exc.msg}"
        ) from None
    except BaseException as exc:  # its top-level code failed: say how, in one line
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise WorkloadError(
                f"cannot load {path}: KeyboardInterrupt while its top-level code ran"
            ) from None
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WorkloadError(
            f"cannot load {path}: {type(exc).__name__}" + (f": {detail}" if detail else "")
        ) from None
    return module


def _check_callable(path: str, name: str, fn: Any) -> bool:
    """Whether ``fn`` is async; raises WorkloadError for anything cpviz cannot call bare."""
    if inspect.isclass(fn) or not callable(fn):
        raise WorkloadError(
            f"{name} in {path} is {'a class' if inspect.isclass(fn) else 'not a function'}; "
            "cpviz runs an async def or a plain def"
        )
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise WorkloadError(
            f"{name} in {path} is a generator function; cpviz runs an async def or a plain def"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        required = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            raise WorkloadError(
                f"{name} in {path} needs arguments ({', '.join(required)}); cpviz calls it with "
                "none, so give them defaults or wrap it in a function that takes none"
            )
    return inspect.iscoroutinefunction(fn)


def load_user_workload(spec: str) -> Workload:
    """Turn ``path.py:function`` into a workload, or raise WorkloadError saying what is wrong."""
    path, name = _split(spec)
    module = _load(path)
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isfunction(v) and getattr(v, "__module__", None) == module.__name__
        )
        raise WorkloadError(
            f"{path} has no function {name!r}; it defines: "
            + (", ".join(defined) if defined else "no functions")
        )
    is_async = _check_callable(path, name, fn)
    return user_workload(spec, fn, is_async)


def inspect_user_workload(spec: str) -> Workload:
    """The viewer's view of ``path.py:function``: checked exactly as :func:`load_user_workload`
    checks it, but in a child interpreter, so the viewer never runs the file's code. Raises
    WorkloadError saying what is wrong, including a file whose top-level code ends or kills
    the interpreter that imports it."""
    path, _ = _split(spec)
    _check_path(path)
    read, write = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "cpviz.workloads.user", spec, str(write)],
            pass_fds=(write,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write)
    try:
        with os.fdopen(read, "rb") as answer:
            text = answer.read(1 << 16)
    finally:
        status = child.wait()
    try:
        result = json.loads(text)
    except ValueError:
        result = None
    if isinstance(result, dict) and isinstance(result.get("error"), str):
        raise WorkloadError(result["error"])
    if isinstance(result, dict) and isinstance(result.get("async"), bool):
        return user_workload(spec, _not_here, result["async"])
    how = (f"killed Python with {_signal_name(-status)}" if status < 0
           else f"ended Python with status {status} (os._exit at its top level?)")
    raise WorkloadError(f"cannot load {path}: importing it {how}; cpviz needs a file whose "
                        "import returns")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _not_here() -> None:
    raise RuntimeError("your code runs in the observed process, never in the viewer")


def _inspect_main(argv: list[str]) -> None:
    """``python -m cpviz.workloads.user SPEC FD``: load SPEC, say on FD what it is, exit."""
    spec, fd = argv[0], int(argv[1])
    os.set_inheritable(fd, False)  # the user's own subprocesses must not hold the answer open
    try:
        workload = load_user_workload(spec)
        answer: dict[str, Any] = {"async": workload.modes == ("async",)}
    except WorkloadError as exc:
        answer = {"error": str(exc)}
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(answer, out)
    os._exit(0)  # not the user's atexit handlers or threads: they ran in the observed process


def user_workload(spec: str, fn: Callable[[], Any], is_async: bool) -> Workload:
    mode = "async" if is_async else "thread"
    where = "on the lab's event loop" if is_async else "in a worker thread"

    async def run(ctx: RunContext) -> None:
        if is_async:
            await fn()
        else:
            await anyio.to_thread.run_sync(fn)
        ctx.advance()

    def total(mode: str, params: Mapping[str, Any]) -> int:
        return 1

    label = os.path.basename(spec)
    return Workload(
        key=label,
        title=f"your code: {label}",
        modes=(mode,),
        params=(),
        explanation=(
            f"Your function {spec} runs {where} with every probe on. The timeline shows each "
            "task it starts; if it blocks the loop, the alarm names the line in your file that "
            "did it, however deep in your own helpers that line is."
        ),
        run=run,
        total=total,
    )


if __name__ == "__main__":
    _inspect_main(sys.argv[1:])
