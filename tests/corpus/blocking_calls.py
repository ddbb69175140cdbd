"""Blocking calls made on the event loop, one function each; ``# BLOCKS`` marks the line the
alarm must name."""

from __future__ import annotations

import hashlib
import select
import socket
import subprocess
import sys
import time


async def sleep_on_loop() -> None:
    time.sleep(0.3)  # BLOCKS


async def select_on_loop() -> None:
    a, b = socket.socketpair()
    try:
        select.select([a], [], [], 0.3)  # BLOCKS
    finally:
        a.close()
        b.close()


async def subprocess_on_loop() -> None:
    subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)  # BLOCKS


async def pbkdf2_on_loop() -> None:
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 400_000)  # BLOCKS
