"""I/O fan-out: N calls that each wait L; concurrency wins by overlapping the waits (C2, C3)."""

from __future__ import annotations

import contextlib
import itertools
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import httpx

from cpviz.engine.contract import Param, RunContext, Workload, WorkloadError
from cpviz.workloads._server import DelayServer, ensure_open_files

EXPLANATION = (
    "N calls that each wait L (default 1000 × 200 ms, like a slow API). "
    "serial: one after another, so about N × L. "
    "concurrent: all at once in a task group; the timeline fills with tasks that are all "
    "waiting at the same moment, each with a sliver of running at start and end, while the "
    "core lanes stay nearly idle: the speedup comes from overlapping the waits, not from CPU. "
    "bounded: a CapacityLimiter lets k run at a time, so the timeline shows waves and the wall "
    "time is about ⌈N/k⌉ × L. real=true makes real HTTP GETs (httpx) to a loopback server that "
    "delays each answer by L."
)


def _needed_files(n: int, mode: str, k: int) -> int:
    live = 1 if mode == "serial" else (n if mode == "concurrent" else min(n, k))
    return 2 * live + 64


def check(mode: str, params: Mapping[str, Any]) -> None:
    """Refuse, before starting, a real run whose connections cannot all be opened."""
    if not params["real"]:
        return
    needed = _needed_files(params["n"], mode, params["k"])
    enough, limit = ensure_open_files(needed)
    if not enough:
        raise WorkloadError(
            f"io real with n={params['n']} in mode {mode} needs about {needed} open files, but "
            f"this system allows {limit}; lower n, use mode bounded, or raise 'ulimit -n'"
        )


async def _run(ctx: RunContext) -> None:
    n: int = ctx.params["n"]
    latency = ctx.params["latency_ms"] / 1000.0
    k: int = ctx.params["k"]
    check(ctx.mode, ctx.params)
    if ctx.params["real"]:
        await _run_real(ctx, n, latency, k)
    else:

        async def call() -> None:
            await anyio.sleep(latency)

        await _fan_out(ctx, n, k, call)


async def _fan_out(
    ctx: RunContext, n: int, k: int, call: Callable[[], Awaitable[None]]
) -> None:
    if ctx.mode == "serial":
        for _ in range(n):
            await call()
            ctx.advance()
        return
    limiter = anyio.CapacityLimiter(k) if ctx.mode == "bounded" else None

    async def one() -> None:
        if limiter is None:
            await call()
        else:
            async with limiter:
                await call()
        ctx.advance()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, name=f"call {i}")


#: Connections per httpx client. httpcore's pool rescans every connection on each request event
#: (encode/httpcore#1035), so one client with 1000 connections spends most of its CPU in pool
#: bookkeeping; shards of 16 keep that cost flat while the total still matches the mode.
SHARD = 16


async def _run_real(ctx: RunContext, n: int, latency: float, k: int) -> None:
    server = DelayServer(latency)
    await anyio.to_thread.run_sync(server.start)
    try:
        conns = 1 if ctx.mode == "serial" else (min(n, k) if ctx.mode == "bounded" else n)
        shards = math.ceil(conns / SHARD)
        per_shard = math.ceil(conns / shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        timeout = httpx.Timeout(30.0 + latency * math.ceil(n / max(1, conns)), pool=None)
        url = f"http://127.0.0.1:{server.port}/"


        def make_clients() -> list[httpx.AsyncClient]:
            # Off the loop, with one shared SSL context: building a client loads the CA store,
            # and doing that per client on the loop froze it for seconds (the alarm said so).
            tls = ssl.create_default_context()
            return [
                httpx.AsyncClient(limits=limits, timeout=timeout, verify=tls)
                for _ in range(shards)
            ]

        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(client)
                for client in await anyio.to_thread.run_sync(make_clients)
            ]
            turn = itertools.count()

            async def call() -> None:
                client = clients[next(turn) % shards]
                response = await client.get(url)
                response.raise_for_status()

            await _fan_out(ctx, n, k, call)
        ctx.extra["http_requests"] = server.requests
        ctx.extra["http_connections"] = conns
    finally:
        await anyio.to_thread.run_sync(server.stop)


def _exact_serial(params: Mapping[str, Any]) -> tuple[float, str]:
    return params["n"] * params["latency_ms"] / 1000.0, "exact: N × L"


WORKLOAD = Workload(
    key="io",
    title="I/O fan-out",
    modes=("concurrent", "serial", "bounded"),
    params=(
        Param("n", int, 1000, 1, 20000, "number of calls"),
        Param("latency_ms", float, 200.0, 1.0, 10000.0, "latency of each call (ms)"),
        Param("k", int, 100, 1, 20000, "calls at a time in bounded mode"),
        Param("real", bool, False, help="real HTTP GETs to a loopback server instead of sleeps"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=lambda mode, params: int(params["n"]),
    serial_mode="serial",
    exact_serial=_exact_serial,
    check=check,
)
