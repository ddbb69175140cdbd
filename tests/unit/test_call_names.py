"""A blocking call is named by what it is (``socket.socket.recv``), not by its variable."""

from __future__ import annotations

import hashlib
import os
import queue
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from time import sleep

import pytest

from cpviz.agent.watchdog import qualify


class Probe:
    """Has a property that must never run while a call is being named."""

    touched = False

    @property
    def sneaky(self) -> int:
        Probe.touched = True
        return 1


def test_calls_on_objects_are_named_by_their_type() -> None:
    a, b = socket.socketpair()
    lock = threading.Lock()
    rlock = threading.RLock()
    q: queue.Queue[int] = queue.Queue()
    c = sqlite3.connect(":memory:")
    thread = threading.Thread(target=print)
    frame = sys._getframe()
    try:
        assert qualify(frame, "a.recv") == "socket.socket.recv"
        assert qualify(frame, "lock.acquire") == "threading.Lock.acquire"
        assert qualify(frame, "rlock.acquire") == "threading.RLock.acquire"
        assert qualify(frame, "q.get") == "queue.Queue.get"
        assert qualify(frame, "c.execute") == "sqlite3.Connection.execute"
        assert qualify(frame, "thread.start") == "threading.Thread.start"
        assert all((lock, rlock, q, thread))  # the names the frame resolves
    finally:
        a.close()
        b.close()
        c.close()


def test_functions_are_named_by_their_home_module() -> None:
    frame = sys._getframe()
    assert qualify(frame, "time.sleep") == "time.sleep"
    assert qualify(frame, "sleep") == "time.sleep"  # from time import sleep
    assert qualify(frame, "subprocess.run") == "subprocess.run"
    assert qualify(frame, "os.read") == "os.read"
    assert qualify(frame, "select.select") == "select.select"
    assert qualify(frame, "hashlib.pbkdf2_hmac") == "hashlib.pbkdf2_hmac"
    assert all((time, sleep, subprocess, os, select, hashlib))  # the names the frame resolves


def test_what_cannot_be_resolved_without_running_code_stays_as_written() -> None:
    probe = Probe()
    frame = sys._getframe()
    assert qualify(frame, "probe.sneaky.bit_length") == "probe.sneaky.bit_length"
    assert Probe.touched is False  # getattr_static: the property never ran
    assert qualify(frame, "nowhere.to_be_found") == "nowhere.to_be_found"
    assert qualify(frame, "f(x).y") == "f(x).y"
    assert probe is not None


def test_the_users_own_functions_keep_the_name_they_were_called_by() -> None:
    def fetch() -> None:
        pass

    frame = sys._getframe()
    assert qualify(frame, "fetch") == "fetch"
    assert qualify(frame, "Probe") == "Probe"  # a class of the user's (this test module)
    assert fetch is not None


@pytest.mark.parametrize("name", ["lock.acquire", "q.get"])
def test_a_name_shadowed_by_a_local_resolves_to_the_local(name: str) -> None:
    lock = threading.Lock()
    q: queue.Queue[int] = queue.Queue()
    frame = sys._getframe()
    assert qualify(frame, name).startswith(("threading.", "queue."))
    assert lock is not None and q is not None
