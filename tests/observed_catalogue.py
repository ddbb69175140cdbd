"""A catalogue whose workloads end the observed process itself, for tests/test_observed.py.

The observed process imports it by name (``tests.observed_catalogue:crash_catalogue``), so it
must stay light: no pytest, nothing that a test module pulls in.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
from typing import Any

from cpviz.engine.contract import RunContext, Workload

#: What the observed process names this catalogue by.
SPEC = "tests.observed_catalogue:crash_catalogue"


def _no_core_file() -> None:
    """A crash on purpose must not leave a core file in the checkout."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def _exit3(ctx: RunContext) -> None:
    os._exit(3)  # a workload that ends the process mid-run, as C code calling exit() would


async def _segfault(ctx: RunContext) -> None:
    _no_core_file()
    ctypes.string_at(0)  # a real invalid read: SIGSEGV


async def _oom_killed(ctx: RunContext) -> None:
    # What the out-of-memory killer does: SIGKILL, no chance to say anything.
    os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(10)


async def _fine(ctx: RunContext) -> None:
    await asyncio.sleep(0.01)
    ctx.advance()


def _workload(key: str, run: Any) -> Workload:
    return Workload(
        key=key,
        title=key,
        modes=("only",),
        params=(),
        explanation=f"test workload {key}",
        run=run,
        total=lambda mode, params: 1,
    )


def crash_catalogue(user: str | None = None) -> tuple[Workload, ...]:
    return (
        _workload("exit3", _exit3),
        _workload("segfault", _segfault),
        _workload("oom-killed", _oom_killed),
        _workload("fine", _fine),
    )
