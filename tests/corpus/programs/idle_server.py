"""A small asyncio server that sits idle between requests, as servers do.

It listens on a loopback port, hands each request to worker tasks through a queue, and waits
for SIGINT with ``await stop.wait()``. A client in a process of its own sends a request, then
waits longer than a second, then sends another. Between requests every task of the program
waits on an Event or a Queue, and nothing is wrong: the next request will wake them.
"""

import asyncio
import signal
import subprocess
import sys

CLIENT = """
import socket, sys, time
for _ in range(int(sys.argv[2])):
    with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s:
        s.sendall(b"ping\\n")
        s.recv(100)
    time.sleep(float(sys.argv[3]))
"""


async def worker(jobs: asyncio.Queue[tuple[bytes, asyncio.Future[bytes]]], served: list[int]
                 ) -> None:
    while True:
        line, reply = await jobs.get()
        reply.set_result(line.upper())
        served.append(1)


async def main(requests: int, gap: float) -> None:
    jobs: asyncio.Queue[tuple[bytes, asyncio.Future[bytes]]] = asyncio.Queue()
    served: list[int] = []
    lock = asyncio.Lock()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        async with lock:
            reply = asyncio.get_running_loop().create_future()
            await jobs.put((line, reply))
            writer.write(await reply)
        await writer.drain()
        writer.close()

    workers = [asyncio.create_task(worker(jobs, served)) for _ in range(3)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # A plain Popen on purpose: the client's pipes stay off the loop, its socket is all it has.
    client = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", CLIENT, str(port), str(requests), str(gap)])
    print(f"listening on {port}", flush=True)
    async with server:
        await stop.wait()
    client.kill()
    client.wait()
    for task in workers:
        task.cancel()
    print(f"served {len(served)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3,
                     float(sys.argv[2]) if len(sys.argv) > 2 else 1.6))
