"""An agent a long-running application carries: ``cpviz.agent.install()``, then ``cpviz
connect`` from another terminal, as tokio-console's ``console_subscriber::init()``.

One call loads the same per-loop probes ``cpviz -- python app.py`` does (:mod:`.probes`) and
listens on a Unix socket in a private directory (:mod:`.sockets`). With nobody connected and
no flight recorder the probes sleep, so the application pays next to nothing; they wake when a
viewer connects, which therefore sees what happens from that moment on. With a flight recorder
(:mod:`.flight`) they stay on and every DRAIN_S their buffers are emptied into it, so nothing
piles up. One viewer at a time; leaving never stops the application.

Standard library only: it runs inside the application.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from cpviz.agent import flight
from cpviz.agent.probes import PROGRAM_RUN, Probes, install_hooks, watch_trio
from cpviz.agent.sockets import private_dir, socket_path, sweep_stale
from cpviz.agent.streamer import FLUSH_S, IDLE_FLUSH_S, Streamer
from cpviz.agent.tracer import task_name
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.events import Event, RunEnd, RunResult, RunStart
from cpviz.engine.recording import encode_lines
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    COMMAND,
    EVENTS,
    FATAL,
    MARK,
    SPAWNS,
    THREADS,
    Sender,
    encode_spawns,
    frame,
    hello,
    json_frame,
    read_frames,
)

#: With nobody connected: how often the probes' buffers are emptied. Their rings hold far more
#: than this much of a busy loop, and a quiet process wakes five times a second.
DRAIN_S = 0.2
#: A freeze past the limit is written once it ends, so the file holds all of it; one that has
#: not ended this long after the limit is written as it stands.
FREEZE_WAIT_S = 10.0
#: Recordings a process writes by itself (freezes past the limit), and the least time between
#: two: the next one would hold most of the last one again.
MAX_AUTO_DUMPS = 20
#: The flight recording's default name (in the working directory at install): ``{pid}``,
#: ``{time}`` (local, to the second) and ``{n}`` (dumps so far) are filled in.
DEFAULT_FLIGHT_PATH = "cpviz-flight-{pid}-{time}.jsonl"
_PEERCRED = struct.Struct("3i")

_lock = threading.Lock()
_current: Agent | None = None


class _Sink(Sender):
    """Where the streamer's batches go: the flight recorder, and the viewer if one is there."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.closed = False

    def send(self, data: bytes) -> bool:
        self._agent._deliver(data)
        return True


class _Session:
    """One connected viewer."""

    def __init__(self, conn: socket.socket, peer: int) -> None:
        self.conn = conn
        self.sender = Sender(conn)
        self.peer = peer
        self.started = False
        self.ending = False
        self.t0 = 0.0


class Agent:
    """The handle :func:`install` returns: where it listens, ``dump()`` and ``close()``."""

    def __init__(self, *, threshold_s: float, flight_s: float, flight_bytes: int,
                 flight_path: str, freeze_limit_s: float | None, dump_signal: int | None,
                 directory: Path | None) -> None:
        self.clock = MonotonicClock()
        self.pid = os.getpid()
        self.name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        self.params: tuple[tuple[str, Any], ...] = (("argv", " ".join(sys.argv)),
                                                    ("pid", self.pid))
        self.threshold_s = threshold_s
        self.flight_path = flight_path
        self.freeze_limit_s = freeze_limit_s
        self.dumps = 0
        #: Where the last flight recording went (None before the first).
        self.last_dump: str | None = None
        self._flight = (flight.FlightRecorder(flight_s, flight_bytes, self.clock.origin)
                        if flight_s > 0 else None)
        directory = private_dir(directory)
        #: The socket ``cpviz connect`` reaches.
        self.address = socket_path(self.pid, directory)
        self._closed = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._session: _Session | None = None
        self._session_lock = threading.Lock()
        self._dump_asked: str | None = None
        self._freezes_from = 0.0
        self._freezes_done: set[tuple[int, int]] = set()
        self._freeze_due: str | None = None
        self._auto_dumps = 0
        self._auto_at = -1e9
        self._warned = False

        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)  # named by our pid: a stale one is a dead process's
        sweep_stale(self.address.parent)
        try:
            self._listener.bind(str(self.address))
            os.chmod(self.address, 0o600)
            self._listener.listen(2)
        except OSError:
            self._listener.close()
            raise
        self._wake_r, self._wake_w = os.pipe()

        stream = EventStream(self.clock)
        # With no flight recorder, nobody needs the probes until a viewer comes: they sleep.
        self.probes = Probes(stream, self.clock, threshold_s, track_runs=False,
                             feed_tracers=False, active=self._flight is not None)
        self._undo = install_hooks(self.probes)
        watch_trio(self.probes)
        self._running_loop_too()
        self._streamer = Streamer(self.probes, _Sink(self), self.pid, lambda: None)
        stream.on_put = self._wake.set
        self.probes.on_threads = self._threads_changed

        self._signal: int | None = None
        if self._flight is not None and dump_signal is not None:
            self._claim_signal(dump_signal)
        self._pump_thread = threading.Thread(target=self._pump, name="cpviz-streamer",
                                             daemon=True)
        self._listen_thread = threading.Thread(target=self._listen, name="cpviz-listener",
                                               daemon=True)
        self._pump_thread.start()
        self._listen_thread.start()
        atexit.register(self.close)
        os.register_at_fork(after_in_child=self._forked)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"listening on {self.address}"
        return f"<cpviz agent pid {self.pid}, {state}>"

    # -- set-up -------------------------------------------------------------------------------

    def _running_loop_too(self) -> None:
        """Called from inside a running loop: that loop was made before the hooks, so it is
        traced and watched from now on."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.probes.loop_created(loop)
        self.probes.loop_running(loop)

    def _claim_signal(self, signum: int) -> None:
        """Dump on ``signum`` unless the application handles it already (or this is not the
        main thread, where Python allows no handler)."""
        try:
            if signal.getsignal(signum) not in (signal.SIG_DFL, None):
                print(f"cpviz: {signal.Signals(signum).name} is the application's own; "
                      "ask for flight recordings with dump()", file=sys.stderr)
                return
            signal.signal(signum, self._on_signal)
        except ValueError:
            return
        self._signal = signum

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A flag only: a signal handler must take no lock the interrupted code may hold.
        self._dump_asked = signal.Signals(signum).name

    def _threads_changed(self) -> None:
        self._streamer.threads_changed()
        self._wake.set()

    def _forked(self) -> None:
        """A forked child has none of the threads: it takes the probes off and goes quiet."""
        self._closed = True
        self._undo()
        with contextlib.suppress(Exception):
            self.probes.detach_all()

    # -- the streamer's thread ----------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        """A batch from the streamer (its thread, under its lock)."""
        if self._flight is not None:
            self._flight.add(self.clock.now(), time.process_time(), data)
        session = self._session
        if session is not None and session.started:
            session.sender.send(data)

    def _pump(self) -> None:
        idle = True
        while not self._stop.is_set():
            session = self._session
            if session is not None and session.started:
                self._wake.wait(IDLE_FLUSH_S if idle else FLUSH_S)
            else:
                self._wake.wait(DRAIN_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                idle = self._tick()
            except Exception as exc:  # a probe must never take the application down
                if not self._warned:
                    self._warned = True
                    print(f"cpviz agent: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _tick(self) -> bool:
        """One round: greet a new viewer, send (or keep, or drop) what the probes made, say
        goodbye to a leaving one, and write a flight recording that is due. Whether it was
        idle."""
        session = self._session
        if session is not None and not session.started:
            self._streamer.flush()  # what came before the viewer: the flight recorder's only
            self.probes.wake()
            self._greet(session)
        busy = self._streamer.flush()
        self.probes.prune()
        if session is not None and (session.ending or session.sender.closed):
            self._farewell(session, "disconnected; the application runs on")
        if self._flight is not None:
            self._flight_due()
        return not busy

    def _greet(self, session: _Session) -> None:
        """What a viewer needs first: the threads, the tasks alive now, and the run's start."""
        now, t0 = time.perf_counter(), self.clock.now()
        out = bytearray(json_frame(THREADS, [list(t) for t in self.probes.threads()]))
        spawns: list[tuple[float, int, str, int, int]] = []
        for loop in self.probes.loops():
            try:
                tasks = asyncio.all_tasks(loop)
            except RuntimeError:
                continue
            spawns.extend((now, id(task), task_name(task), PROGRAM_RUN, 0) for task in tasks)
        if spawns:
            out += frame(SPAWNS, encode_spawns(spawns))
        out += json_frame(MARK, {"run": PROGRAM_RUN, "at": "start"})
        out += self._events([RunStart(t0, PROGRAM_RUN, self.name, "program", self.params, 0)])
        session.t0 = t0
        session.started = session.sender.send(bytes(out))

    def _farewell(self, session: _Session, outcome: str) -> None:
        """The run's end for a viewer that leaves (if it can still hear it), then hang up."""
        if session.started and not session.sender.closed:
            t1 = self.clock.now()
            extra = (("max_loop_lag_s", round(self.probes.max_lag(session.t0, t1), 6)),
                     ("pid", self.pid))
            result = RunResult(self.name, "program", self.params, max(t1 - session.t0, 1e-9),
                               0.0, 0.0, None, None, self.probes.incidents(session.t0, t1),
                               outcome, extra=extra)
            session.sender.send(json_frame(MARK, {"run": PROGRAM_RUN, "at": "end"})
                                + self._events([RunEnd(t1, PROGRAM_RUN, result)]))
        with contextlib.suppress(OSError):
            session.conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            session.conn.close()
        with self._session_lock:
            if self._session is session:
                self._session = None
        if self._flight is None and not self._closed:
            self.probes.sleep()

    @staticmethod
    def _events(events: list[Event]) -> bytes:
        return frame(EVENTS, encode_lines(events).encode())

    # -- the listener's thread ----------------------------------------------------------------

    def _listen(self) -> None:
        listener = self._listener
        fd = listener.fileno()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd, self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._stop.is_set() or fd not in ready:
                return
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                self._admit(conn)
            except OSError:
                with contextlib.suppress(OSError):
                    conn.close()

    def _admit(self, conn: socket.socket) -> None:
        """Let in this user's one viewer; anyone else hears why not."""
        peer, uid, _gid = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid != os.getuid():
            conn.close()
            return
        with self._session_lock:
            busy = self._session
            if busy is None:
                session = self._session = _Session(conn, peer)
        if busy is not None:
            Sender(conn).send(json_frame(FATAL, {
                "error": f"another viewer (pid {busy.peer}) is connected to pid {self.pid}; "
                         "one at a time"}))
            conn.close()
            return
        session.sender.send(self._hello())
        threading.Thread(target=self._commands, args=(session,), name="cpviz-commands",
                         daemon=True).start()
        self._wake.set()

    def _hello(self) -> bytes:
        return hello(
            origin=self.clock.origin, name=self.name, run=PROGRAM_RUN,
            argv=" ".join(sys.argv), threshold_s=self.threshold_s,
            flight_s=self._flight.seconds if self._flight is not None else 0.0,
        )

    def _commands(self, session: _Session) -> None:
        """The viewer's commands: a quit (or its going away) ends the session, nothing else."""
        with contextlib.suppress(Exception):
            for kind, payload in read_frames(session.conn):
                if kind == COMMAND and b'"quit"' in payload:
                    break
        session.ending = True
        self._wake.set()

    # -- the flight recorder ------------------------------------------------------------------

    def _flight_due(self) -> None:
        """Write what was asked for: a signal, or a freeze past the limit."""
        asked, self._dump_asked = self._dump_asked, None
        if asked is not None:
            self._write_safely(f"{asked} was received")
        due, self._freeze_due = self._freeze_due, None
        if due is not None:
            self._write_safely(due)
        limit = self.freeze_limit_s
        if limit is None:
            return
        now = self.clock.now()
        for key, since, duration in self.probes.freezes_since(self._freezes_from):
            if key in self._freezes_done:
                continue
            lasted = duration if duration is not None else now - since
            if lasted >= limit and (duration is not None or lasted >= limit + FREEZE_WAIT_S):
                self._freezes_done.add(key)
                assert self._flight is not None
                if (self._auto_dumps >= MAX_AUTO_DUMPS
                        or now - self._auto_at < self._flight.seconds):
                    continue  # one recording per window at most, and only so many
                self._auto_dumps += 1
                self._auto_at = now
                # Written at the next round, after the flush that carries the freeze's end.
                self._freeze_due = f"the loop froze for {lasted:.2f} s (limit {limit:g} s)"
        if len(self._freezes_done) > 1000:
            self._freezes_from = now - 2 * (limit + FREEZE_WAIT_S)
            self._freezes_done.clear()

    def _write_safely(self, reason: str) -> None:
        try:
            path = self._write(None)
        except Exception as exc:
            print(f"cpviz: flight recording failed: {exc}", file=sys.stderr)
            return
        print(f"cpviz: flight recording written to {path} ({reason})", file=sys.stderr)

    def _write(self, path: str | None) -> str:
        assert self._flight is not None
        self.dumps += 1
        if path is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            path = self.flight_path.format(pid=self.pid, time=stamp, n=self.dumps)
        window = self._flight.window()
        live: dict[int, str] = {}
        for loop in self.probes.loops():
            with contextlib.suppress(RuntimeError):
                live.update((id(t), task_name(t)) for t in asyncio.all_tasks(loop))
        now = self.clock.now()
        start = window.batches[0][0] if window.batches else now
        flight.write(path, window, origin=self.clock.origin, cores=os.cpu_count() or 1,
                     name=self.name, params=self.params, now=now,
                     cpu_now=time.process_time(), live=live,
                     command=f"cpviz.agent.install() in pid {self.pid}: {' '.join(sys.argv)}",
                     incidents=self.probes.incidents(start, now))
        self.last_dump = path
        return path

    # -- the handle ---------------------------------------------------------------------------

    def dump(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the flight recorder's window as a recording now; where it went.

        It decodes and writes up to the recorder's size on the calling thread: from a
        coroutine, ``await asyncio.to_thread(agent.dump)`` keeps the loop turning.
        """
        if self._flight is None:
            raise RuntimeError("no flight recorder: install it with install(flight_s=SECONDS)")
        if self._closed:
            raise RuntimeError("the cpviz agent is closed")
        self._streamer.flush()
        return self._write(None if path is None else os.fspath(path))

    def close(self) -> None:
        """Hang up on the viewer, stop listening, take the probes off. Safe to call twice."""
        global _current
        with _lock:
            if self._closed:
                return
            self._closed = True
            if _current is self:
                _current = None
        self._stop.set()
        self._wake.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for thread in (self._listen_thread, self._pump_thread):
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        session = self._session
        if session is not None:
            with contextlib.suppress(Exception):
                self._streamer.flush()
            self._farewell(session, "the application closed cpviz's agent")
        self._undo()
        self.probes.detach_all()
        if self._signal is not None:
            with contextlib.suppress(ValueError):
                if signal.getsignal(self._signal) == self._on_signal:
                    signal.signal(self._signal, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Skipped:
    """What ``install()`` gives a program that already runs under cpviz: a handle that does
    nothing, so the program's own calls on it work as they would elsewhere."""

    address: Path | None = None
    last_dump: str | None = None

    def dump(self, path: str | os.PathLike[str] | None = None) -> str:
        raise RuntimeError("this program runs under cpviz, which records it already "
                           "(cpviz run --record FILE -- python app.py)")

    def close(self) -> None:
        pass

    def __enter__(self) -> Skipped:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def install(
    *,
    threshold_ms: float = 100.0,
    flight_s: float = 0.0,
    flight_mb: float = 32.0,
    flight_path: str | os.PathLike[str] | None = None,
    freeze_limit_s: float | None = None,
    dump_signal: int | None = signal.SIGUSR2,
    directory: str | os.PathLike[str] | None = None,
) -> Agent | Skipped:
    """Watch this process's event loops and listen for ``cpviz connect``; the agent's handle.

    * ``threshold_ms``: how long a loop may stall before it counts as a freeze.
    * ``flight_s``: keep the last this-many seconds in memory (0: no flight recorder), at most
      ``flight_mb`` megabytes of them, and write them as a recording to ``flight_path`` (a
      template: ``{pid}``, ``{time}``, ``{n}``) on ``dump()``, on ``dump_signal`` (SIGUSR2,
      unless the application handles it already), and when a freeze lasts ``freeze_limit_s``.
    * ``directory``: where the socket goes (default ``$XDG_RUNTIME_DIR/cpviz`` or
      ``/tmp/cpviz-<uid>``); it must be this user's alone (mode 0700), or this raises
      :class:`~cpviz.agent.sockets.UnsafeDirectory`.

    Call it early, before the loops you want traced are made, or from inside the running loop
    (which is then traced from that moment). A second call returns the first agent while it is
    open.
    """
    global _current
    if not 1 <= threshold_ms <= 60_000:
        raise ValueError(f"threshold_ms must be from 1 to 60000, got {threshold_ms}")
    if flight_s < 0 or flight_mb <= 0:
        raise ValueError("flight_s must be 0 (off) or more, and flight_mb more than 0")
    if freeze_limit_s is not None and (freeze_limit_s <= 0 or flight_s == 0):
        raise ValueError("freeze_limit_s needs a flight recorder (flight_s > 0) and a "
                         "positive limit")
    with _lock:
        if _current is not None:
            return _current
        if getattr(asyncio.events._set_running_loop, "__module__", "") == "cpviz.agent.probes":
            # Run as ``cpviz -- python app.py``: its probes are in already, and the program
            # must run as it would anywhere else.
            print("cpviz: install() is skipped: this program already runs under cpviz",
                  file=sys.stderr, flush=True)
            return Skipped()
        path = flight_path if flight_path is not None else DEFAULT_FLIGHT_PATH
        _current = Agent(
            threshold_s=threshold_ms / 1000.0, flight_s=flight_s,
            flight_bytes=int(flight_mb * 1e6),
            flight_path=os.path.abspath(os.fspath(path)), freeze_limit_s=freeze_limit_s,
            dump_signal=dump_signal,
            directory=None if directory is None else Path(directory),
        )
        return _current
