"""An HTTP server on the lab loop under steady load, CPU per request (C16); tiny async steps (C15).

The server listens on 127.0.0.1 on the lab's own event loop, so the tracer sees its connection
tasks and the watchdog sees what freezes it. The load comes from a client on a thread of its own,
with its own event loop: when the server's loop freezes, the client keeps its schedule and the
freeze shows up in the latencies it measures instead of being hidden by a client that waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx

from cpviz.engine.contract import Param, RunContext, Workload, WorkloadError
from cpviz.workloads._http import BadRequest, response, take_request
from cpviz.workloads._jobs import hello, spin
from cpviz.workloads._server import ensure_open_files

EXPLANATION = (
    "A loopback HTTP server runs on the lab's event loop while a client on its own thread sends "
    "`rate` GETs a second on a fixed timetable; each request costs `work` iterations of "
    "pure-Python arithmetic (the default is roughly 8 ms of CPU on a current machine). "
    "loop: the arithmetic runs inside the handler, so every request freezes the loop; once "
    "requests arrive faster than one core can compute them they queue, the freezes run "
    "together, the other connections sit ready but not running on the timeline, the alarm "
    "names the line in server.py and p99 shoots up. "
    "threads: the loop stays free between requests, but the GIL lets one thread compute at a "
    "time and the loop must win it back from the busy threads for every read and write, so the "
    "load stays near one core and latency climbs with the rate, often worse than on the loop. "
    "processes: the work goes to worker processes, the lanes fill, and latency stays close to "
    "the cost of one request until the rate exceeds what all the cores can serve. "
    "Latency is counted from when each request was due, not from when the client got round to "
    "sending it, so a stalled server cannot hide its queue by holding the client back (the "
    "'coordinated omission' trap). "
    "tiny-steps: the same tiny sum done N times as plain calls, as awaited coroutines that "
    "never yield, and as coroutines that yield once each; every yield is a round trip through "
    "the scheduler (and past cpviz's tracer) that costs far more than the step, so async/await "
    "makes CPU-only work slower, not faster."
)

#: Span of the sliding window the live percentiles and throughput are computed over.
WINDOW_S = 2.0
#: How long the client waits for answers still due once its timetable has ended.
DRAIN_S = 10.0
#: A request not answered within this long counts as an error.
REQUEST_TIMEOUT_S = 30.0
#: How long stopping waits for the client thread to finish closing its connections.
JOIN_S = 5.0
#: Measured rounds of the tiny-steps comparison (medians are reported).
ROUNDS = 5
#: Name of the client's thread (also how tests check that none is left behind).
CLIENT_THREAD = "load-generator"


def render(work: int) -> int:
    """The CPU one request costs: pure-Python arithmetic holding the GIL, like ``_jobs.spin``.

    Defined here rather than imported so that, in loop mode, the alarm points at this file.
    """
    acc = 0
    for i in range(work):
        acc = (acc + i * i) % 1_000_003
    return acc


# -- what the client measured -----------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


class LoadStats:
    """Requests the client sent and how long each took; written by the client thread, read by
    the lab's gauges on the lab loop, hence the lock."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        #: (completion time, latency) of answers within the window, oldest first.
        self._recent: deque[tuple[float, float]] = deque()
        #: Latency of every successful request, in completion order.
        self.latencies: list[float] = []
        self.sent = 0
        self.completed = 0
        self.errors = 0
        #: perf_counter when the timetable began, and when the last answer arrived.
        self.started: float | None = None
        self.last_done: float | None = None

    def begin(self, t: float) -> None:
        with self._lock:
            self.started = t

    def sent_one(self) -> None:
        with self._lock:
            self.sent += 1

    def finished(self, done: float, latency: float, ok: bool) -> None:
        with self._lock:
            self.last_done = done
            if ok:
                self.completed += 1
                self.latencies.append(latency)
                self._recent.append((done, latency))
            else:
                self.errors += 1

    def in_flight(self) -> int:
        """Sent and not yet answered (including those waiting for a free connection)."""
        with self._lock:
            return self.sent - self.completed - self.errors

    def _window(self, now: float) -> list[float]:
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()
        return [lat for _, lat in self._recent]

    def recent_ms(self, q: float, now: float | None = None) -> float:
        """The ``q`` percentile over the window, in ms; LookupError while nothing was answered
        in it (the lab then draws no point rather than a made-up one)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            window = sorted(self._window(now))
        if not window:
            raise LookupError("no request answered in the window")
        return percentile(window, q) * 1000.0

    def recent_rps(self, now: float | None = None) -> float:
        """Answers per second over the window (or over the run so far, while it is shorter)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if self.started is None:
                raise LookupError("the client has not started")
            span = min(self.window_s, now - self.started)
            count = len(self._window(now))
        if span <= 0:
            raise LookupError("no time has passed")
        return count / span


# -- the client ---------------------------------------------------------------------------------


class LoadGenerator:
    """Sends GETs at a steady rate from its own thread and event loop (open loop).

    Request *i* is due at ``start + i / rate`` whatever happened to earlier ones; when all
    ``concurrency`` connections are busy it waits for one, and that wait counts in its latency.
    """

    def __init__(
        self,
        url: str,
        rate: float,
        duration_s: float,
        concurrency: int,
        stats: LoadStats,
        on_done: Callable[[], None],
    ) -> None:
        self.url = url
        #: Requests per second; may be changed from another thread while running.
        self.rate = rate
        self.duration_s = duration_s
        self.concurrency = concurrency
        self.stats = stats
        self.error: BaseException | None = None
        self._on_done = on_done
        self._lock = threading.Lock()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: anyio.CancelScope | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=CLIENT_THREAD, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel every request and end the thread soon; safe from any thread, at any time."""
        with self._lock:
            self._stopping = True
            loop, scope = self._loop, self._scope
        if loop is not None and scope is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                loop.call_soon_threadsafe(scope.cancel)

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _main(self) -> None:
        try:
            anyio.run(self._generate, backend="asyncio")
        except BaseException as exc:  # handed to the run, which reports it as a failure
            self.error = exc
        finally:
            self._on_done()

    async def _generate(self) -> None:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, pool=None)
        # trust_env=False: a proxy from the environment must not sit between us and loopback.
        async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
            with anyio.CancelScope() as scope:
                with self._lock:
                    self._loop = asyncio.get_running_loop()
                    self._scope = scope
                    if self._stopping:
                        scope.cancel()
                async with anyio.create_task_group() as tg:
                    await self._timetable(tg, client)
                    # Answers still due get a while to arrive; the rest count as unfinished.
                    scope.deadline = anyio.current_time() + DRAIN_S

    async def _timetable(self, tg: anyio.abc.TaskGroup, client: httpx.AsyncClient) -> None:
        start = time.perf_counter()
        self.stats.begin(start)
        end = start + self.duration_s
        due = start
        n = 0
        while due < end:
            # sleep(0) when behind: still a checkpoint, so stopping is noticed while catching up.
            await anyio.sleep(max(0.0, due - time.perf_counter()))
            n += 1
            tg.start_soon(self._request, client, due, name=f"request {n}")
            due += 1.0 / self.rate

    async def _request(self, client: httpx.AsyncClient, due: float) -> None:
        self.stats.sent_one()
        try:
            answer = await client.get(self.url)
            ok = answer.status_code == 200
        except httpx.HTTPError:
            ok = False
        done = time.perf_counter()
        self.stats.finished(done, done - due, ok)


# -- the server ---------------------------------------------------------------------------------


class _Server:
    """Accepts connections on the lab loop and answers each GET after its CPU work."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.work: int = ctx.params["work"]
        self.connections = 0

    async def accept(self, listener: anyio.abc.Listener[Any], tg: anyio.abc.TaskGroup) -> None:
        if not isinstance(listener, anyio.abc.SocketListener):
            raise TypeError(f"expected a socket listener, got {type(listener).__name__}")
        while True:
            stream = await listener.accept()
            self.connections += 1
            tg.start_soon(self.connection, stream, name=f"http conn {self.connections}")

    async def connection(self, stream: anyio.abc.SocketStream) -> None:
        """Serve one keep-alive connection, request after request, until the client leaves."""
        gone = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
        async with stream:
            buf = bytearray()
            with contextlib.suppress(*gone):
                while True:
                    try:
                        request = take_request(buf)
                    except BadRequest as bad:
                        await stream.send(
                            response(bad.status, f"{bad}\n".encode(), keep_alive=False)
                        )
                        return
                    if request is None:
                        buf += await stream.receive()
                        continue
                    while len(buf) < request.content_length:
                        buf += await stream.receive()
                    del buf[: request.content_length]
                    if request.method in ("GET", "HEAD"):
                        status, body = 200, await self.answer()
                    else:
                        status, body = 405, b"this server answers GET and HEAD\n"
                    await stream.send(
                        response(
                            status,
                            body,
                            keep_alive=request.keep_alive,
                            head_only=request.method == "HEAD",
                        )
                    )
                    if status == 200:
                        self.ctx.advance()
                    if not request.keep_alive:
                        return

    async def answer(self) -> bytes:
        mode = self.ctx.mode
        if mode == "loop":
            value = render(self.work)  # on the loop itself, on purpose: this freezes it
        elif mode == "threads":
            value = await anyio.to_thread.run_sync(render, self.work)
        else:
            value = await self.ctx.in_process(spin, self.work)
        return f"{value}\n".encode()


async def _warm_pool(ctx: RunContext) -> None:
    """Have every worker of the lab's process pool answer once before the load starts, so the
    pool's start-up is not counted as request latency (a real server starts its workers first).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    t0 = ctx.now()
    async with anyio.create_task_group() as tg:
        for i in range(max(1, cores or 1)):
            tg.start_soon(ctx.in_process, hello, 0.05, name=f"warm-up {i}")
    ctx.phase("warm-up", t0, ctx.now(), "process pool answered")


async def _serve_under_load(ctx: RunContext) -> None:
    p = ctx.params
    if ctx.mode == "processes":
        await _warm_pool(ctx)
    stats = LoadStats()
    loop = asyncio.get_running_loop()
    client_done = anyio.Event()

    def on_done() -> None:  # on the client's thread
        with contextlib.suppress(RuntimeError):  # the lab loop has already closed
            loop.call_soon_threadsafe(client_done.set)

    server = _Server(ctx)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = LoadGenerator(
            f"http://127.0.0.1:{port}/",
            float(p["rate"]),
            float(p["duration_s"]),
            int(p["concurrency"]),
            stats,
            on_done,
        )

        def rate_changed(name: str, value: Any) -> None:
            if name != "rate":
                return
            client.rate = float(value)
            left = p["duration_s"]
            if stats.started is not None:
                left = max(0.0, stats.started + p["duration_s"] - time.perf_counter())
            ctx.total = stats.sent + round(left * float(value))
            ctx.advance(0)

        ctx.on_change(rate_changed)
        ctx.gauge("p50 ms", lambda: stats.recent_ms(0.50))
        ctx.gauge("p99 ms", lambda: stats.recent_ms(0.99))
        ctx.gauge("rps", stats.recent_rps)
        ctx.gauge("in flight", stats.in_flight)
        async with anyio.create_task_group() as tg:
            for sub in listener.listeners:
                tg.start_soon(server.accept, sub, tg, name="http accept")
            client.start()
            try:
                await client_done.wait()
            finally:
                client.stop()
                with anyio.CancelScope(shield=True):
                    ended = await anyio.to_thread.run_sync(client.join, JOIN_S)
                # Also when stopped: what was measured up to the stop is still worth showing.
                _report(ctx, stats, server.connections)
            tg.cancel_scope.cancel()
    if not ended:
        raise RuntimeError(f"the load generator did not stop within {JOIN_S} s")
    if client.error is not None:
        raise RuntimeError(f"the load generator failed: {client.error!r}") from client.error


def _report(ctx: RunContext, stats: LoadStats, connections: int) -> None:
    lat = sorted(stats.latencies)
    ctx.extra["rate"] = ctx.params["rate"]
    ctx.extra["sent"] = stats.sent
    ctx.extra["completed"] = stats.completed
    ctx.extra["errors"] = stats.errors
    ctx.extra["unfinished"] = stats.sent - stats.completed - stats.errors
    ctx.extra["connections"] = connections
    span = (
        stats.last_done - stats.started
        if stats.last_done is not None and stats.started is not None
        else 0.0
    )
    ctx.extra["achieved_rps"] = round(stats.completed / span, 2) if span > 0 else 0.0
    for name, q in (("p50_ms", 0.50), ("p99_ms", 0.99), ("max_ms", 1.0)):
        ctx.extra[name] = round(percentile(lat, q) * 1000.0, 3) if lat else None


# -- tiny steps (C15) ---------------------------------------------------------------------------


def _step(acc: int, i: int) -> int:
    return (acc * 31 + i) & 0xFFFF


async def _step_awaited(acc: int, i: int) -> int:
    return (acc * 31 + i) & 0xFFFF


async def _step_yielding(acc: int, i: int) -> int:
    await anyio.lowlevel.checkpoint()  # one trip through the event loop's scheduler
    return (acc * 31 + i) & 0xFFFF


async def _tiny_steps(ctx: RunContext) -> None:
    n: int = ctx.params["steps"]
    plain: list[float] = []
    awaited: list[float] = []
    yielding: list[float] = []
    for _ in range(ROUNDS):
        # The batches themselves are the work being compared, so they are timed whole.
        t0 = time.perf_counter()
        a = 0
        for i in range(n):
            a = _step(a, i)
        t1 = time.perf_counter()
        await anyio.lowlevel.checkpoint()
        t2 = time.perf_counter()
        b = 0
        for i in range(n):
            b = await _step_awaited(b, i)
        t3 = time.perf_counter()
        await anyio.lowlevel.checkpoint()
        t4 = time.perf_counter()
        c = 0
        for i in range(n):
            c = await _step_yielding(c, i)
        t5 = time.perf_counter()
        if not a == b == c:
            raise AssertionError("the three versions of the steps disagree")
        plain.append((t1 - t0) / n * 1e9)
        awaited.append((t3 - t2) / n * 1e9)
        yielding.append((t5 - t4) / n * 1e9)
        ctx.metric("plain ns/step", plain[-1])
        ctx.metric("await ns/step", awaited[-1])
        ctx.metric("async ns/step", yielding[-1])
        ctx.advance()
    plain_ns = statistics.median(plain)
    async_ns = statistics.median(yielding)
    ctx.extra["steps_per_batch"] = n
    ctx.extra["rounds"] = ROUNDS
    ctx.extra["plain_ns_per_step"] = round(plain_ns, 1)
    ctx.extra["await_ns_per_step"] = round(statistics.median(awaited), 1)
    ctx.extra["async_ns_per_step"] = round(async_ns, 1)
    ctx.extra["overhead_x"] = round(async_ns / plain_ns, 2) if plain_ns > 0 else None
    ctx.metric("overhead x", async_ns / plain_ns if plain_ns > 0 else 0.0)


# -- declaration --------------------------------------------------------------------------------


async def _run(ctx: RunContext) -> None:
    check(ctx.mode, ctx.params)
    if ctx.mode == "tiny-steps":
        await _tiny_steps(ctx)
    else:
        await _serve_under_load(ctx)


def check(mode: str, params: Mapping[str, Any]) -> None:
    """Refuse, before starting, a concurrency whose connections cannot all be opened."""
    if mode == "tiny-steps":
        return
    needed = 2 * params["concurrency"] + 64  # both ends of each connection live in cpviz
    enough, limit = ensure_open_files(needed)
    if not enough:
        raise WorkloadError(
            f"server with concurrency={params['concurrency']} needs about {needed} open files, "
            f"but this system allows {limit}; lower concurrency or raise 'ulimit -n'"
        )


def _total(mode: str, params: Mapping[str, Any]) -> int:
    if mode == "tiny-steps":
        return ROUNDS
    return max(1, round(float(params["rate"]) * float(params["duration_s"])))


WORKLOAD = Workload(
    key="server",
    title="HTTP server with CPU per request",
    modes=("loop", "threads", "processes", "tiny-steps"),
    params=(
        Param("rate", float, 100.0, 1.0, 2000.0, "requests per second the client sends",
              live=True),
        Param("work", int, 80_000, 1_000, 50_000_000,
              "loop iterations of CPU per request (80 000 is roughly 8 ms)"),
        Param("duration_s", float, 10.0, 0.5, 600.0, "how long the client sends (s)"),
        Param("concurrency", int, 32, 1, 1000, "most connections the client opens at once"),
        Param("steps", int, 20_000, 100, 1_000_000, "tiny-steps mode: steps per batch"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=_total,
    check=check,
)
