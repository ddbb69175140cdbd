"""A program whose own child process waits forever (on an event nobody will set), the way a
worker stuck on a lock does: killing cpviz must not leave it behind."""

from __future__ import annotations

import multiprocessing
import time


def wait_forever(event: multiprocessing.synchronize.Event) -> None:
    event.wait()


def main() -> None:
    event = multiprocessing.get_context("fork").Event()
    child = multiprocessing.get_context("fork").Process(target=wait_forever, args=(event,))
    child.start()
    time.sleep(600)
