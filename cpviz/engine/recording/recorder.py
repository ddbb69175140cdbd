"""The recorder: a tap on the event stream, a packing thread, and the writer process it feeds.

Writing costs the watched program as little as it can: :meth:`Recorder.tap` only appends the
drained batch to a queue; a thread packs the queue into plain tuples a few times a second, and a
writer process (:mod:`~cpviz.engine.recording.writer`) turns those into JSON, compresses and
flushes them on another core.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from cpviz.engine.events import Event, StreamGap
from cpviz.engine.recording.header import Header
from cpviz.engine.recording.packing import Packed, pack
from cpviz.engine.recording.reader import RecordingError
from cpviz.engine.recording.writer import _LEN
from cpviz.engine.source import event_time

DEFAULT_MAX_MB = 200.0
#: How often the recorder hands its queue to the writer, which flushes after each hand-over:
#: about what a crash can lose.
FLUSH_S = 0.2
#: Events the recorder may hold waiting for the writer before it starts dropping batches.
MAX_PENDING_EVENTS = 2_000_000


@dataclass(frozen=True)
class RecorderStatus:
    """What the recorder has done so far, for the screen and the end-of-run line."""

    path: str
    #: Events written to the file.
    events: int
    #: Bytes of JSON written (before compression), header included.
    bytes: int
    #: True once the size cap was reached and writing stopped.
    capped: bool
    #: The one line to show a person when something needs saying (cap hit, write failed).
    message: str | None
    #: True once the file is finished and closed.
    closed: bool


class Recorder:
    """Writes every batch the stream drains to a recording file.

    Attach it with ``stream.add_tap(recorder.tap)``. Three stages, so the program being watched
    pays as little as possible: :meth:`tap` (on the draining thread) appends the batch to a
    queue; a thread here packs queued batches a few times a second (see :func:`pack`) and pipes
    them to a writer *process*, which formats the JSON, compresses and writes it on another
    core, flushing after each batch. The file is created (truncated) before the constructor
    returns, so a path that cannot be written fails at once rather than minutes later.
    """

    def __init__(
        self,
        path: str | Path,
        header: Header,
        *,
        max_bytes: int = int(DEFAULT_MAX_MB * 1e6),
        flush_s: float = FLUSH_S,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.path = str(path)
        self.max_bytes = max_bytes
        self.flush_s = flush_s
        try:
            with open(path, "wb"):
                pass
        except OSError as exc:
            raise RecordingError(path, None, f"cannot write: {exc.strerror or exc}") from None
        self._lock = threading.Lock()
        self._events = 0
        self._bytes = 0
        self._capped = False
        self._message: str | None = None
        self._closed = False
        self._pending: deque[Sequence[Event]] = deque()
        # Events queued and events taken, each written by one thread only: no lock needed.
        self._queued = 0
        self._taken = 0
        #: Events dropped because the writer fell too far behind, and the time of the last.
        self._lost = 0
        self._lost_t = 0.0
        self._stop = False
        self._wake = threading.Event()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, self.path, str(max_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
            # Its own session: Ctrl+C in the terminal must not kill it before the file is done.
            start_new_session=os.name == "posix",
        )
        self._send([header.encode()])
        self._reader = threading.Thread(target=self._read_status, name="cpviz-recorder-status",
                                        daemon=True)
        self._reader.start()
        self._thread = threading.Thread(target=self._main, name="cpviz-recorder", daemon=True)
        self._thread.start()

    # -- the draining thread's side ----------------------------------------------------------

    def tap(self, batch: Sequence[Event]) -> None:
        """Queue a drained batch: one append. The batch must not change afterwards."""
        if not batch or self._stop:
            return
        if self._queued - self._taken + len(batch) > MAX_PENDING_EVENTS:
            with self._lock:
                self._lost += len(batch)
                self._lost_t = max(self._lost_t, event_time(batch[-1]))
            return
        self._queued += len(batch)
        self._pending.append(batch)

    # -- status ------------------------------------------------------------------------------

    @property
    def status(self) -> RecorderStatus:
        with self._lock:
            return RecorderStatus(
                self.path, self._events, self._bytes, self._capped, self._message, self._closed
            )

    @property
    def message(self) -> str | None:
        """The cap (or failure) message, once there is one."""
        return self._message

    # -- the packing thread ------------------------------------------------------------------

    def _main(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_s)
            self._send_pending()

    def _send_pending(self) -> None:
        batches: list[Sequence[Event]] = []
        pending = self._pending
        while pending:
            batches.append(pending.popleft())
        self._taken += sum(len(b) for b in batches)
        with self._lock:
            lost, self._lost = self._lost, 0
        if lost:
            # Say so in the file, as the stream would: a replay must not draw a hole as idle.
            batches.append([StreamGap(self._lost_t, lost)])
        if not batches:
            return
        packed: Packed = []
        for batch in batches:
            packed.extend(pack(batch))
        self._send(packed)

    def _send(self, message: Any) -> None:
        stdin = self._proc.stdin
        if stdin is None or self._message is not None:
            return
        buffer = BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        # No memo: these rows never repeat or refer to each other, and remembering every tuple
        # costs more than writing it.
        pickler.fast = True
        pickler.dump(message)
        payload = buffer.getvalue()
        try:
            stdin.write(_LEN.pack(len(payload)) + payload)
            stdin.flush()
        except (OSError, ValueError):
            self._set_message(f"recording {self.path} stopped: the writer process ended early")

    def _set_message(self, message: str) -> None:
        with self._lock:
            if self._message is None:
                self._message = message

    # -- what the writer process says --------------------------------------------------------

    def _read_status(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        for line in stdout:
            try:
                report = json.loads(line)
                events, written = int(report["events"]), int(report["bytes"])
                capped, message = bool(report["capped"]), report["message"]
            except (ValueError, KeyError, TypeError):
                continue
            with self._lock:
                self._events, self._bytes, self._capped = events, written, capped
                if message and self._message is None:
                    self._message = str(message)

    # -- closing -------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> RecorderStatus:
        """Send what is queued, let the writer finish the file, and wait for it. Idempotent."""
        if self._closed:
            return self.status
        self._stop = True
        self._wake.set()
        self._thread.join()
        self._send_pending()
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
            self._set_message(f"recording {self.path}: the writer did not finish in {timeout:g} s")
        self._reader.join()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if code != 0:
            self._set_message(f"recording {self.path}: the writer process failed (exit {code})")
        with self._lock:
            self._closed = True
        return self.status

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _child_env() -> dict[str, str]:
    """The environment for the writer: this cpviz first on its path, whatever started us."""
    import cpviz

    env = dict(os.environ)
    root = str(Path(cpviz.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


_CHILD = "from cpviz.engine.recording.writer import _writer_main; _writer_main()"
