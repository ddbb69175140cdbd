"""Server overhead: what cpviz costs a real asyncio server, in requests per second.

The tracer benchmark's worst case (``tracer_overhead.py``) is a program of nothing but task
switches. A server does work between them: here an asyncio streams server that reads each
request's head, parses its request line and headers, and answers with a small JSON body, one
task per keep-alive connection, as a small HTTP service would. Its load comes from a client of
the script's own in a process of its own: CONNECTIONS connections on 127.0.0.1, each sending its
next request as soon as the previous answer arrived (a closed loop), so the server runs flat out
and its speed is the requests per second the client counts over a window of WINDOW_S (at most
MAX_REQUESTS, after a warm-up).

Two comparisons, each in alternating pairs (the order flips each pair), median of the per-pair
ratios, untraced ÷ traced requests/s:

* **the tracer alone** (``tracer_alone``): the server on a fresh loop in this process, with and
  without ``Tracer().attach(loop)``;
* **through the observed process** (the value): the server as a workload in
  ``python -m cpviz.agent`` through :class:`~cpviz.engine.observed.ObservedLab`, with every
  probe on (tracer, watchdog heartbeat, no-progress detector, the streamer sending the ring every
  20 ms) and this process, the viewer, draining the stream into a Model at the screen's 25 Hz;
  against the same server in a plain interpreter that imports nothing of cpviz.

The serving process is pinned to one CPU and the client (and the viewer) to the others, so the
viewer's own work and the client's compete with each other, not with the server; the server's
CPU per request (its process CPU over the load, ``cpu_per_request_ratio``) is reported beside,
as a figure the client's speed cannot blur. Needs two CPUs or more.

The observed process loads this module as its catalogue (``server_overhead:lab_catalogue``), so
at the top it imports only the standard library and cpviz's run contract.

    python bench/server_overhead.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import select
import socket
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any

from _common import end_on_sigterm, leftovers, log, observed_path, spread

from cpviz.engine.contract import RunContext, Workload

TARGET = 1.03
#: Keep-alive connections the client keeps busy, one request in flight on each.
CONNECTIONS = 64
#: Requests the client sends before it starts counting: connections open, caches warm.
WARMUP_REQUESTS = 2_000
#: How long the client counts, and the most requests it counts.
WINDOW_S = 1.0
MAX_REQUESTS = 100_000
#: The longest a sample may take, start to finish, before it is abandoned as failed.
SAMPLE_TIMEOUT_S = 30.0
#: This script: the client and the plain server are this script run again.
SCRIPT = os.path.abspath(__file__)
#: The catalogue the observed process loads, and the workload's key in it.
CATALOGUE = "server_overhead:lab_catalogue"
SERVER_KEY = "server"
#: The one request the client sends (its path picks the answer), and the answer's length.
REQUEST = (
    b"GET /items/42?fields=name,price HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"User-Agent: cpviz-bench\r\nAccept: application/json\r\nConnection: keep-alive\r\n\r\n"
)


# -- the server ---------------------------------------------------------------------------------


def answer(head: bytes) -> bytes:
    """The response to one request head: the work a small JSON endpoint does for it."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    fields = dict(part.partition("=")[::2] for part in query.split("&") if part)
    item = int(path.rsplit("/", 1)[-1])
    body = json.dumps({
        "id": item,
        "name": f"item {item}",
        "price": round(item * 1.25, 2),
        "fields": fields.get("fields", "").split(","),
        "agent": headers.get("user-agent", ""),
        "method": method,
    }).encode()
    keep = "keep-alive" if headers.get("connection") == "keep-alive" else "close"
    return (
        f"{version} 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {keep}\r\n\r\n"
    ).encode() + body


RESPONSE_SIZE = len(answer(REQUEST[:-4]))


def pin(cpus: set[int]) -> None:
    """Put every thread of this process on ``cpus`` (a thread's affinity is its own on Linux)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


#: The CPUs the bench may use, as it started: handed down in the environment, because the
#: processes it starts inherit the CPU it pinned itself to by then.
CPUS_ENV = "CPVIZ_BENCH_CPUS"
ALLOWED = sorted(
    int(c) for c in os.environ.get(CPUS_ENV, "").split(",") if c
) or sorted(os.sched_getaffinity(0))


def split_cpus() -> tuple[set[int], set[int]]:
    """(the server's CPU, everyone else's): the first allowed CPU, and the rest."""
    cpus = ALLOWED
    if len(cpus) < 2:
        sys.exit("FAIL: the server bench needs two CPUs, one for the server and one for its load")
    return {cpus[0]}, set(cpus[1:])


async def serve_under_load() -> dict[str, float]:
    """Serve on 127.0.0.1 until the client process is done; its counts and the server's CPU."""
    server_cpus, load_cpus = split_cpus()
    pin(server_cpus)
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(answer(head[:-4]))
                served += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, "--client", str(port),
            ",".join(map(str, sorted(load_cpus))),
            stdout=asyncio.subprocess.PIPE,
        )
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            out, _ = await asyncio.wait_for(client.communicate(), SAMPLE_TIMEOUT_S)
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
        cpu1, wall1 = time.process_time(), time.perf_counter()
    finally:
        server.close()
        await server.wait_closed()
    counted = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "rps": counted["requests"] / counted["seconds"],
        "requests": counted["requests"],
        "server_cpu_per_request_us": (cpu1 - cpu0) / served * 1e6,
        "server_wall_s": wall1 - wall0,
        "served": served,
    }


# -- the client ---------------------------------------------------------------------------------


def run_client(port: int) -> dict[str, float]:
    """Keep CONNECTIONS connections busy until the window closes; what was counted in it.

    Plain sockets and ``select.epoll``, not asyncio: a client that costs less per request
    than the server leaves the server the bottleneck, so its requests/s are what is measured.
    """
    conns: dict[int, socket.socket] = {}
    pending: dict[int, int] = {}
    poller = select.epoll()
    try:
        for _ in range(CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            conns[sock.fileno()] = sock
            pending[sock.fileno()] = 0
            poller.register(sock.fileno(), select.EPOLLIN)
        for sock in conns.values():
            sock.send(REQUEST)
        sent, counted = len(conns), 0
        opened: float | None = None
        last = deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
        while conns:
            events = poller.poll(1.0)
            now = time.perf_counter()
            if now > deadline:
                raise SystemExit("the server stopped answering")
            for fd, _ in events:
                sock = conns[fd]
                data = sock.recv(1 << 16)
                got = pending[fd] + len(data)
                while got >= RESPONSE_SIZE and fd in conns:
                    got -= RESPONSE_SIZE
                    if opened is None:
                        if sent >= WARMUP_REQUESTS:
                            opened = now
                    else:
                        counted += 1
                        last = now
                    if opened is not None and (now - opened >= WINDOW_S
                                               or counted >= MAX_REQUESTS):
                        poller.unregister(fd)
                        del conns[fd]
                        sock.close()
                    else:
                        sock.send(REQUEST)
                        sent += 1
                pending[fd] = got
                if not data and fd in conns:
                    raise SystemExit("the server closed a connection")
    finally:
        poller.close()
        for sock in conns.values():
            sock.close()
    if opened is None or counted == 0:
        raise SystemExit("the client counted no answers")
    return {"requests": counted, "seconds": last - opened, "client_cpu_s": time.process_time()}


def client_main(port: int, cpus: str) -> None:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    print(json.dumps(run_client(port)), flush=True)


# -- the three ways the server runs ---------------------------------------------------------------


def in_process(traced: bool) -> dict[str, float]:
    """The server on a fresh loop in this process, with the tracer alone or nothing."""
    from cpviz.agent.tracer import Tracer

    loop = asyncio.new_event_loop()
    tracer = Tracer()
    try:
        if traced:
            tracer.attach(loop)
        gc.collect()
        figures = loop.run_until_complete(serve_under_load())
    finally:
        tracer.detach()
        loop.close()
    if traced:
        figures["dropped"] = tracer.drain([])
        figures["steps"] = tracer.written
    return figures


async def _server(ctx: RunContext) -> None:
    """The server as a workload: in the observed process, with every probe on."""
    ctx.extra.update(await serve_under_load())
    ctx.advance(1)


def _total(mode: str, params: Mapping[str, Any]) -> int:
    return 1


SERVER = Workload(
    key=SERVER_KEY,
    title="asyncio streams server under a loopback load",
    modes=("traced",),
    params=(),
    explanation="the server bench's HTTP-like server, its client in a process of its own",
    run=_server,
    total=_total,
)


def lab_catalogue(user: str | None = None) -> tuple[Workload, ...]:
    """What the observed process offers (``user`` is ignored)."""
    return (SERVER,)


class Plain:
    """The server in an interpreter of its own that loads nothing of cpviz's probes.

    One process for the whole comparison, serving a sample each time it is asked, so that it
    is as warm as the observed process it is compared with: a fresh interpreter per sample
    served at up to a third more CPU per request here.
    """

    def __init__(self) -> None:
        import subprocess

        self._proc = subprocess.Popen(
            [sys.executable, SCRIPT, "--plain"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def __call__(self) -> dict[str, float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            sys.exit("FAIL: the plain server process ended")
        figures: dict[str, float] = json.loads(line)
        return figures

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=SAMPLE_TIMEOUT_S)
        except Exception:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def observed(lab: Any) -> dict[str, float]:
    """The server as a workload in the observed process, drained as the screen drains."""
    from cpviz.engine.headless import run_to_end
    from cpviz.engine.model import Model

    model = Model(cores=lab.cores)
    model.apply(lab.stream.drain())
    gc.collect()
    run_id = lab.launch(SERVER_KEY, None, {})
    result = run_to_end(lab, model, run_id, timeout=SAMPLE_TIMEOUT_S * 2, poll_s=1 / 25)
    if result.get("outcome") != "completed":
        sys.exit(f"FAIL: the observed server run did not complete: {result.get('outcome')} "
                 f"{result.get('error', '')}")
    return {k: float(result[k]) for k in ("rps", "requests", "server_cpu_per_request_us",
                                          "server_wall_s", "served")}


# -- the comparison -----------------------------------------------------------------------------


def compare(
    name: str, pairs: int, traced: Any, untraced: Any
) -> tuple[list[float], list[float], list[dict[str, float]], list[dict[str, float]]]:
    """Alternating pairs; per-pair ratios untraced ÷ traced of requests/s, and traced ÷
    untraced of CPU per request."""
    rps: list[float] = []
    cpu: list[float] = []
    ts: list[dict[str, float]] = []
    us: list[dict[str, float]] = []
    for i in range(pairs):
        if i % 2 == 0:
            t, u = traced(), untraced()
        else:
            u, t = untraced(), traced()
        ts.append(t)
        us.append(u)
        rps.append(u["rps"] / t["rps"])
        cpu.append(t["server_cpu_per_request_us"] / u["server_cpu_per_request_us"])
        log(
            f"{name} pair {i + 1}/{pairs}: untraced {u['rps']:.0f} req/s, traced "
            f"{t['rps']:.0f} req/s -> {rps[-1]:.3f}x; cpu per request "
            f"{u['server_cpu_per_request_us']:.1f} vs {t['server_cpu_per_request_us']:.1f} us "
            f"-> {cpu[-1]:.3f}x"
        )
    return rps, cpu, ts, us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="pairs in each comparison (min 7)")
    parser.add_argument("--quick", action="store_true", help="5 pairs each")
    parser.add_argument("--client", nargs=2, metavar=("PORT", "CPUS"), help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(int(args.client[0]), args.client[1])
        return
    if args.plain:
        for _ in sys.stdin:  # a sample each time the bench asks, until it closes the pipe
            print(json.dumps(asyncio.run(serve_under_load())), flush=True)
        return
    pairs = 5 if args.quick else max(7, args.runs)
    end_on_sigterm()
    observed_path()
    os.environ[CPUS_ENV] = ",".join(map(str, ALLOWED))
    from cpviz.engine.observed import ObservedLab

    began = time.perf_counter()
    in_process(False)  # warm-up: imports, the client's start, caches
    alone_rps, alone_cpu, alone_t, alone_u = compare(
        "tracer alone", pairs, lambda: in_process(True), lambda: in_process(False)
    )
    # The viewer's threads (channel reader, draining) go where the client is, off the server's.
    pin(split_cpus()[1])
    lab = ObservedLab(lab_catalogue(), catalogue=CATALOGUE, sample=False, output=sys.stderr)
    pids: list[int] = []
    plain = Plain()
    try:
        lab.start()
        if lab.pid is not None:
            pids.append(lab.pid)
        observed(lab)  # warm-up of both
        plain()
        obs_rps, obs_cpu, obs_t, obs_u = compare(
            "observed", pairs, lambda: observed(lab), plain
        )
    finally:
        plain.close()
        lab.close()
    left = leftovers(gone=pids)
    if left:
        sys.exit(f"FAIL: left running: {', '.join(left)}")
    dropped = sum(int(t.get("dropped", 0)) for t in alone_t)
    if dropped:
        sys.exit(f"FAIL: the tracer dropped {dropped} steps")

    value = statistics.median(obs_rps)
    alone = statistics.median(alone_rps)
    log(f"tracer alone, requests/s untraced / traced: {spread(alone_rps)}")
    log(f"tracer alone, cpu per request traced / untraced: {spread(alone_cpu)}")
    log(f"observed process, requests/s plain / observed: {spread(obs_rps)}")
    log(f"observed process, cpu per request observed / plain: {spread(obs_cpu)}")
    log(
        f"server overhead: {value:.3f}x through the observed process, {alone:.3f}x with the "
        f"tracer alone (target <= {TARGET}x); took {time.perf_counter() - began:.0f} s"
    )
    steps = statistics.median(t["steps"] / t["served"] for t in alone_t)
    print(json.dumps({
        "metric": "server_overhead",
        "value": round(value, 3),
        "unit": "x",
        "target": TARGET,
        "better": "lower",
        "clock": "requests/s",
        "spread": [round(min(obs_rps), 3), round(max(obs_rps), 3)],
        "cpu_per_request_ratio": round(statistics.median(obs_cpu), 3),
        "tracer_alone": round(alone, 3),
        "tracer_alone_spread": [round(min(alone_rps), 3), round(max(alone_rps), 3)],
        "tracer_alone_cpu_per_request_ratio": round(statistics.median(alone_cpu), 3),
        "rps_plain": round(statistics.median(u["rps"] for u in obs_u)),
        "rps_observed": round(statistics.median(t["rps"] for t in obs_t)),
        "rps_untraced_in_process": round(statistics.median(u["rps"] for u in alone_u)),
        "rps_traced_in_process": round(statistics.median(t["rps"] for t in alone_t)),
        "steps_per_request": round(steps, 2),
        "connections": CONNECTIONS,
        "runs": pairs,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
