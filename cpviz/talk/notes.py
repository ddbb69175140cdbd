"""The speaker-notes channel: the talk publishes its current scene, ``cpviz talk --notes`` follows.

It is a Unix socket in a directory only the user can enter, so nobody else on the machine can
read the notes or feed the notes view a fake scene. Each message is one line of JSON (read with
``json.loads`` only, never anything that runs code) holding the whole state, so a reader that
misses one, or connects late, is right again at the next line; the server also sends the latest
state to every reader as it connects.

No Textual here: the talk screen and the notes view both sit on top of this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict

from cpviz.talk.deck import Deck

#: Name of the socket inside ``notes_dir()``.
SOCKET_NAME = "talk.sock"
#: Longest line either side accepts; a state is a few kilobytes, so anything longer is broken.
MAX_LINE = 1 << 20

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


class NotesError(RuntimeError):
    """The channel cannot be used; the message says why and what to do."""


class NotesState(TypedDict):
    """What the notes view shows: everything about the current scene, sent whole each time."""

    deck: str
    index: int
    count: int
    title: str
    caption: str
    notes: str
    next: str | None
    dilation: float
    blank: bool


def scene_state(
    deck: Deck, index: int, *, dilation: float | None = None, blank: bool = False
) -> NotesState:
    """The state for scene ``index`` of ``deck`` (``dilation`` defaults to the scene's own)."""
    scene = deck.scenes[index]
    following = deck.scenes[index + 1].title if index + 1 < len(deck.scenes) else None
    return NotesState(
        deck=deck.title,
        index=index,
        count=len(deck.scenes),
        title=scene.title,
        caption=scene.caption,
        notes=scene.notes,
        next=following,
        dilation=scene.dilation if dilation is None else dilation,
        blank=blank,
    )


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0o700, or check an existing one is ours and closed to others.

    Refusing rather than fixing an existing directory is deliberate: if someone else made it, or
    it was open to others, a socket inside it may already have been read or replaced.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise NotesError(f"cannot create {path} for the notes channel: {exc.strerror}") from None
    else:
        os.chmod(path, 0o700)  # a strict umask may have taken bits from the owner too
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotesError(f"refusing to use {path} for the notes channel: it is not a directory")
    if st.st_uid != os.getuid():
        raise NotesError(
            f"refusing to use {path} for the notes channel: it belongs to uid {st.st_uid}, "
            f"not to you (uid {os.getuid()})"
        )
    if st.st_mode & 0o077:
        raise NotesError(
            f"refusing to use {path} for the notes channel: other users can reach it "
            f"(mode {stat.S_IMODE(st.st_mode):03o}); make it private with 'chmod 700 {path}'"
        )
    return path


def _usable_runtime_dir(base: str) -> bool:
    """Whether $XDG_RUNTIME_DIR is worth using: an absolute directory we own and can write."""
    path = Path(base)
    if not path.is_absolute():
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and os.access(path, os.W_OK | os.X_OK)
    )


def notes_dir() -> Path:
    """The private directory for the channel, created if needed.

    ``$XDG_RUNTIME_DIR/cpviz`` when that variable names a usable directory (it is per user and
    cleared at logout), else ``/tmp/cpviz-<uid>``.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and _usable_runtime_dir(runtime):
        return ensure_private_dir(Path(runtime) / "cpviz")
    return ensure_private_dir(Path("/tmp") / f"cpviz-{os.getuid()}")


def socket_path(path: Path | str | None = None) -> Path:
    """The socket to use: ``path`` (whose directory must be private too) or the default one."""
    if path is None:
        return notes_dir() / SOCKET_NAME
    chosen = Path(path)
    ensure_private_dir(chosen.parent)
    return chosen


def encode_state(state: NotesState | dict[str, Any]) -> bytes:
    """One state as one line of JSON."""
    line = json.dumps(state, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n"
    data = line.encode("ascii")
    if len(data) > MAX_LINE:
        raise ValueError(f"a notes state must stay under {MAX_LINE} bytes, this one is {len(data)}")
    return data


def decode_state(line: bytes) -> dict[str, Any] | None:
    """A state from one line, or None when the line is not a JSON object."""
    try:
        value = json.loads(line)
    except ValueError:  # also covers bad UTF-8
        return None
    return value if isinstance(value, dict) else None


class NotesServer:
    """The talk's end: publishes the current scene to every notes view that connects.

    ``publish`` never blocks the caller (the talk's UI thread): a reader that stops reading and
    lets its socket buffer fill is dropped rather than waited for.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self._requested = path
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._latest: bytes | None = None
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._inode: int | None = None

    def __enter__(self) -> NotesServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def clients(self) -> int:
        """Notes views connected now."""
        with self._lock:
            return len(self._clients)

    def start(self) -> Path:
        """Listen at the socket and start the ``cpviz-notes`` thread; return the socket's path."""
        if self._thread is not None:
            raise RuntimeError("the notes server is already started")
        path = socket_path(self._requested)
        _clear_stale_socket(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)
            listener.listen(8)
        except OSError as exc:
            listener.close()
            raise NotesError(f"cannot listen for notes views at {path}: {exc}") from None
        listener.setblocking(False)
        self._inode = os.stat(path).st_ino
        self.path = path
        self._listener = listener
        self._wake = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake[0], selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="cpviz-notes", daemon=True)
        self._thread.start()
        return path

    def publish(self, state: NotesState | dict[str, Any]) -> None:
        """Send ``state`` to every connected view, and keep it for views that connect later."""
        line = encode_state(state)
        with self._lock:
            self._latest = line
            for client in list(self._clients):
                if not _send(client, line):
                    self._drop(client)

    def close(self) -> None:
        """Stop the thread, disconnect every view and remove the socket file. Safe to repeat."""
        thread, self._thread = self._thread, None
        if thread is not None and self._wake is not None:
            self._stop.set()
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
            thread.join()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            _shut(client)
            client.close()
        if self._selector is not None:
            for key in list(self._selector.get_map().values()):
                if isinstance(key.fileobj, socket.socket) and key.fileobj not in (
                    self._listener,
                    *(self._wake or ()),
                ):
                    key.fileobj.close()  # dropped views the thread had not reaped yet
            self._selector.close()
            self._selector = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._wake is not None:
            for end in self._wake:
                end.close()
            self._wake = None
        if self.path is not None and self._inode is not None:
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(self.path).st_ino == self._inode:  # only the file we made
                    os.unlink(self.path)
            self._inode = None

    def _drop(self, client: socket.socket) -> None:
        """Forget a view (lock held); the thread closes it when it sees the shutdown."""
        if client in self._clients:
            self._clients.remove(client)
        _shut(client)

    def _serve(self) -> None:
        assert self._selector is not None and self._listener is not None
        selector, listener = self._selector, self._listener
        while not self._stop.is_set():
            for key, _ in selector.select():
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is listener:
                    self._accept(listener, selector)
                elif self._wake is not None and sock is self._wake[0]:
                    continue  # close() woke us; the loop condition ends the thread
                else:
                    self._read(sock, selector)

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        client.setblocking(False)
        with self._lock:
            if self._latest is not None and not _send(client, self._latest):
                client.close()
                return
            self._clients.append(client)
        selector.register(client, selectors.EVENT_READ)

    def _read(self, client: socket.socket, selector: selectors.BaseSelector) -> None:
        """Views send nothing; readable means gone (or chatter, which is thrown away)."""
        try:
            data = client.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        selector.unregister(client)
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close()


def _send(client: socket.socket, line: bytes) -> bool:
    """Send a whole line without waiting; False if the view is gone or not keeping up."""
    try:
        return client.send(line, _NOSIGNAL) == len(line)
    except OSError:
        return False


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a talk that died; refuse if a talk still answers there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise NotesError(f"{path} exists and is not a socket; move it away to start the talk")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError as exc:
        raise NotesError(f"cannot tell whether a talk is running at {path}: {exc}") from None
    finally:
        probe.close()
    raise NotesError(f"another talk is already running: something answers at {path}; stop it first")


class NotesClient:
    """The notes view's end: connects to a running talk and yields each state it sends.

    ``for state in client:`` ends when the talk closes the channel or ``close()`` is called
    (from any thread: it wakes a blocked read).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = socket_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise NotesError(
                f"no talk is running: nothing listens at {self.path}; "
                "start 'cpviz talk' in another terminal first"
            ) from None
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._closed = threading.Event()

    def __enter__(self) -> NotesClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pending = bytearray()
        while not self._closed.is_set():
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                if self._closed.is_set():
                    return
                raise
            if not chunk:
                return
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                if len(line) > MAX_LINE:
                    raise NotesError(f"the talk sent a line over {MAX_LINE} bytes; giving up")
                state = decode_state(line)
                if state is not None:
                    yield state
            if len(pending) > MAX_LINE:
                raise NotesError(f"the talk sent a line over {MAX_LINE} bytes; giving up")

    def close(self) -> None:
        """Disconnect; a read blocked in another thread returns at once. Safe to repeat."""
        if self._closed.is_set():
            return
        self._closed.set()
        _shut(self._sock)
        self._sock.close()
