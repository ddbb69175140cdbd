"""A small async service with a bug cpviz finds: a blocking call three helpers deep.

Try it:  cpviz run examples/slow_service.py:main
   or:   cpviz --start examples/slow_service.py:main
The alarm names the ``time.sleep`` line in ``load_config`` below, not the ``await`` in ``main``.
"""

import time

import anyio


def read_settings() -> dict[str, str]:
    time.sleep(0.3)  # the bug: a blocking wait inside the event loop's thread
    return {"region": "eu"}


def load_config() -> dict[str, str]:
    return read_settings()


async def handle(request: int) -> str:
    await anyio.sleep(0.05)  # a well-behaved await: the loop stays free
    if request % 10 == 0:
        load_config()  # ...but every tenth request reloads its settings the slow way
    return f"done {request}"


async def main() -> None:
    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(handle, i, name=f"request {i}")
