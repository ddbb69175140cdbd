"""An I/O-bound asyncio program, as people write them: a loopback streams server and a client
load of its own, run with ``asyncio.run(main())`` under ``__main__``.

``python _echo_load.py CLIENTS REQUESTS`` serves on 127.0.0.1 (an ephemeral port), opens
CLIENTS connections that each send REQUESTS small request/response round trips, prints how
long that took, and exits.
bench/program_overhead.py times it plainly and under ``cpviz run -- python …``.
"""

from __future__ import annotations

import asyncio
import sys

PAYLOAD = b"GET /item HTTP/1.1\r\nHost: bench\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readuntil(b"\r\n\r\n")
        if not line:
            break
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()


async def client(port: int, requests: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(requests):
        writer.write(PAYLOAD)
        await writer.drain()
        await reader.readuntil(b"ok")
    writer.close()
    await writer.wait_closed()


async def main(clients: int, requests: int) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(*(client(port, requests) for _ in range(clients)))


if __name__ == "__main__":
    import time

    asyncio.run(main(1, 5))  # a warm-up: whatever asyncio imports lazily, it imports here
    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    # The program's own time and its process's CPU (cpviz's probe threads in it included), the
    # same way watched or not (read by program_overhead.py).
    print(f"elapsed {time.perf_counter() - started:.6f} cpu {time.process_time() - cpu:.6f}",
          flush=True)
