"""Results from other threads into a future on an event loop, without racing the loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any


def threadsafe_future(
    loop: asyncio.AbstractEventLoop, on_settle: Callable[[], None] | None = None
) -> tuple[asyncio.Future[Any], Callable[[bool, Any], None]]:
    """A future on ``loop``, and ``deliver(ok, value)`` that any thread may call to settle it.

    The future is only ever touched on its own loop (asyncio futures are not thread-safe); a
    delivery after the loop has closed is dropped; ``on_settle`` runs on the loop for every
    delivery, even one that comes after the awaiting task was cancelled.
    """
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if on_settle is not None:
            on_settle()
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def deliver(ok: bool, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(settle, ok, value)

    return future, deliver
