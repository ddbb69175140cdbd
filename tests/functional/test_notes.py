"""The speaker-notes channel (a private Unix socket) and the notes view that follows it."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from cpviz.talk.deck import Deck, Scene
from cpviz.talk.notes import (
    MAX_LINE,
    SOCKET_NAME,
    NotesClient,
    NotesError,
    NotesServer,
    NotesState,
    encode_state,
    notes_dir,
    scene_state,
)
from cpviz.talk.notes_app import ENDED_MESSAGE, NotesApp

pytestmark = pytest.mark.anyio

#: Generous bound on waits for another thread; a test that needs it has already failed.
PATIENCE_S = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def state(index: int = 2, **changes: Any) -> NotesState:
    base = NotesState(
        deck="Concurrency you can see",
        index=index,
        count=12,
        title="The blocking call",
        caption="One time.sleep on the loop freezes every coroutine.",
        notes="Point at the alarm.\nAsk who has shipped a sync call in async code.",
        next="The fix: to_thread",
        dilation=4.0,
        blank=False,
    )
    base.update(changes)  # type: ignore[typeddict-item]
    return base


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A private directory with a short path (a socket path must fit in about 100 bytes)."""
    path = tmp_path / "n"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def notes_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("cpviz-notes")]


def until(condition: Any) -> None:
    """Wait for another thread to make ``condition()`` true (fails the test if it never does)."""
    done = threading.Event()
    deadline = threading.Timer(PATIENCE_S, done.set)
    deadline.start()
    try:
        while not condition():
            if done.wait(0.01):
                raise AssertionError("condition never became true")
    finally:
        deadline.cancel()


def read(client: NotesClient, n: int) -> list[dict[str, Any]]:
    """The next n states; a watchdog closes the client so a broken channel fails, not hangs."""
    guard = threading.Timer(PATIENCE_S, client.close)
    guard.start()
    got: list[dict[str, Any]] = []
    try:
        for item in client:
            got.append(item)
            if len(got) == n:
                break
    finally:
        guard.cancel()
    return got


# The channel ---------------------------------------------------------------------------------


def test_a_connected_view_receives_each_published_state_in_order(private: Path) -> None:
    with NotesServer(private / SOCKET_NAME) as server, NotesClient(private / SOCKET_NAME) as client:
        until(lambda: server.clients == 1)
        server.publish(state(0))
        server.publish(state(1))
        assert read(client, 2) == [state(0), state(1)]


def test_a_late_view_gets_the_current_state_first(private: Path) -> None:
    with NotesServer(private / SOCKET_NAME) as server:
        server.publish(state(0))
        server.publish(state(5))
        with NotesClient(private / SOCKET_NAME) as client:
            assert read(client, 1) == [state(5)]
            until(lambda: server.clients == 1)
            server.publish(state(6))
            assert read(client, 1) == [state(6)]


def test_closing_the_server_ends_the_views_and_removes_the_socket(private: Path) -> None:
    server = NotesServer(private / SOCKET_NAME)
    path = server.start()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    client = NotesClient(path)
    until(lambda: server.clients == 1)
    server.publish(state())
    server.close()
    assert not path.exists()
    assert read(client, 5) == [state()]  # the state, then the end of the talk
    client.close()
    assert notes_threads() == []
    server.close()  # twice is harmless


def test_nothing_is_left_running(private: Path) -> None:
    before = set(threading.enumerate())
    with NotesServer(private / SOCKET_NAME) as server:
        clients = [NotesClient(private / SOCKET_NAME) for _ in range(3)]
        until(lambda: server.clients == 3)
        assert "cpviz-notes" in notes_threads()
        clients[0].close()
        until(lambda: server.clients == 2)
    for client in clients:
        client.close()
    assert notes_threads() == []
    # Other tests' idle worker threads may come and go meanwhile; none of the new ones is ours.
    assert not [t for t in set(threading.enumerate()) - before if "notes" in t.name]


def test_a_view_that_stops_reading_is_dropped_rather_than_waited_for(private: Path) -> None:
    big = state(notes="x" * 200_000)
    with NotesServer(private / SOCKET_NAME) as server, NotesClient(private / SOCKET_NAME):
        until(lambda: server.clients == 1)
        for _ in range(100):  # far more than a socket buffer holds
            server.publish(big)
        assert server.clients == 0


def test_the_client_says_no_talk_is_running(private: Path) -> None:
    with pytest.raises(NotesError, match=r"no talk is running: nothing listens at .*talk\.sock"):
        NotesClient(private / SOCKET_NAME)


def test_a_stale_socket_file_is_replaced(private: Path) -> None:
    path = private / SOCKET_NAME
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a talk that crashed: the file stays, nobody listens
    assert path.exists()
    with pytest.raises(NotesError, match="no talk is running"):
        NotesClient(path)
    with NotesServer(path) as server, NotesClient(path) as client:
        server.publish(state())
        assert read(client, 1) == [state()]


def test_a_second_talk_on_a_live_socket_is_refused(private: Path) -> None:
    with NotesServer(private / SOCKET_NAME) as first:
        first.publish(state())
        with pytest.raises(NotesError, match="another talk is already running"):
            NotesServer(private / SOCKET_NAME).start()
        with NotesClient(private / SOCKET_NAME) as client:  # the first is untouched
            assert read(client, 1) == [state()]
    assert notes_threads() == []


def test_a_file_that_is_not_a_socket_is_left_alone(private: Path) -> None:
    path = private / SOCKET_NAME
    path.write_text("mine")
    with pytest.raises(NotesError, match="not a socket"):
        NotesServer(path).start()
    assert path.read_text() == "mine"


def test_the_client_joins_partial_lines_and_skips_what_is_not_a_state(private: Path) -> None:
    path = private / SOCKET_NAME
    chunks = [b'{"index":', b" 1}\n", b"not json\n[1, 2]\n", b'{"ind', b'ex": 2}\n{"index"']
    with _raw_server(path, chunks), NotesClient(path) as client:
        assert read(client, 5) == [{"index": 1}, {"index": 2}]


def test_the_client_rejects_a_line_over_a_mebibyte(private: Path) -> None:
    path = private / SOCKET_NAME
    endless = [b'{"notes": "' + b"x" * (MAX_LINE + 10)]
    with (
        _raw_server(path, endless),
        NotesClient(path) as client,
        pytest.raises(NotesError, match="over"),
    ):
        read(client, 1)


def test_states_over_a_mebibyte_are_not_published() -> None:
    with pytest.raises(ValueError, match="under"):
        encode_state(state(notes="x" * MAX_LINE))


class _raw_server:
    """A listener that sends fixed bytes to the first connection, then hangs up."""

    def __init__(self, path: Path, chunks: list[bytes]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.chunks = chunks
        self.thread = threading.Thread(target=self._run, name="test-raw-server")

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for chunk in self.chunks:
                try:
                    conn.sendall(chunk)
                except OSError:
                    return

    def __enter__(self) -> _raw_server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(PATIENCE_S)
        self.listener.close()
        assert not self.thread.is_alive()


# The private directory -----------------------------------------------------------------------


def test_notes_dir_is_made_private_under_the_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = notes_dir()
    assert path == tmp_path / "cpviz"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    assert notes_dir() == path  # an existing private one is fine


def test_notes_dir_refuses_a_directory_others_can_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "cpviz").mkdir()
    (tmp_path / "cpviz").chmod(0o755)
    with pytest.raises(NotesError, match=r"other users can reach it \(mode 755\)"):
        notes_dir()
    with pytest.raises(NotesError, match="other users can reach it"):
        NotesServer(tmp_path / "cpviz" / SOCKET_NAME).start()
    with pytest.raises(NotesError, match="other users can reach it"):
        NotesClient(tmp_path / "cpviz" / SOCKET_NAME)


def test_notes_dir_refuses_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "cpviz").symlink_to(real)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(NotesError, match="not a directory"):
        notes_dir()


def test_notes_dir_falls_back_to_tmp_without_a_usable_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert notes_dir() == Path("/tmp") / f"cpviz-{os.getuid()}"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/path")
    assert notes_dir() == Path("/tmp") / f"cpviz-{os.getuid()}"


# What the talk publishes ---------------------------------------------------------------------


def test_scene_state_describes_the_scene_and_the_next() -> None:
    deck = Deck(
        title="Talk",
        scenes=(
            Scene(title="Hello", caption="c0", notes="n0"),
            Scene(title="Fan-out", workload="io", dilation=3.0),
        ),
    )
    first = scene_state(deck, 0)
    assert first == {
        "deck": "Talk",
        "index": 0,
        "count": 2,
        "title": "Hello",
        "caption": "c0",
        "notes": "n0",
        "next": "Fan-out",
        "dilation": 1.0,
        "blank": False,
    }
    last = scene_state(deck, 1, blank=True)
    assert last["next"] is None and last["dilation"] == 3.0 and last["blank"]
    assert scene_state(deck, 1, dilation=8.0)["dilation"] == 8.0


# The notes view ------------------------------------------------------------------------------


async def _show(pilot: Any) -> None:
    pilot.app.show(state())
    await pilot.pause()


def test_notes_view(snap_compare: Any) -> None:
    assert snap_compare(NotesApp(), terminal_size=(100, 30), run_before=_show)


def _text(app: NotesApp, widget_id: str) -> str:
    from textual.widgets import Static

    return str(app.query_one(f"#{widget_id}", Static).render())


async def test_the_view_shows_where_the_speaker_is() -> None:
    app = NotesApp()
    async with app.run_test(size=(100, 30)) as pilot:
        assert "waiting" in _text(app, "title")
        app.show(state(index=2, blank=True, next=None))
        await pilot.pause()
        assert _text(app, "position").startswith("scene 3 of 12")
        assert "slow motion ×4" in _text(app, "position")
        assert "BLANKED" in _text(app, "position")
        assert _text(app, "title") == "The blocking call"
        assert _text(app, "notes").startswith("Point at the alarm.")
        assert _text(app, "next") == "next: (last scene)"


async def test_the_view_follows_its_source_and_exits_when_the_talk_ends() -> None:
    states = [state(i) for i in range(4)]
    app = NotesApp(states)
    with anyio.fail_after(PATIENCE_S):
        await app.run_async(headless=True, size=(100, 30))
    assert app.state == states[-1]
    assert app.ended == ENDED_MESSAGE
    assert app.return_code == 0
    assert notes_threads() == []


async def test_a_broken_source_ends_the_view_with_the_reason() -> None:
    def broken() -> Iterator[NotesState]:
        yield state(0)
        raise NotesError("the talk sent a line over 1048576 bytes; giving up")

    app = NotesApp(broken())
    with anyio.fail_after(PATIENCE_S):
        await app.run_async(headless=True, size=(100, 30))
    assert app.state == state(0)
    assert app.ended is not None and "lost the talk" in app.ended and "over" in app.ended
    assert app.return_code == 1


async def test_the_view_follows_a_live_talk_until_it_ends(private: Path) -> None:
    server = NotesServer(private / SOCKET_NAME)
    server.start()
    try:
        server.publish(state(0))
        app = NotesApp(NotesClient(private / SOCKET_NAME))
        async with app.run_test(size=(100, 30)) as pilot:
            with anyio.fail_after(PATIENCE_S):
                while app.state != state(0):
                    await pilot.pause(0.01)
                server.publish(state(1))
                while app.state != state(1):
                    await pilot.pause(0.01)
                server.close()
                while app.ended is None:
                    await pilot.pause(0.01)
        assert app.ended == ENDED_MESSAGE
    finally:
        server.close()
    assert notes_threads() == []


async def test_q_quits_while_the_reader_waits_on_the_socket(private: Path) -> None:
    with NotesServer(private / SOCKET_NAME) as server:
        server.publish(state(0))
        app = NotesApp(NotesClient(private / SOCKET_NAME))
        async with app.run_test(size=(100, 30)) as pilot:
            with anyio.fail_after(PATIENCE_S):
                while app.state is None:
                    await pilot.pause(0.01)
            await pilot.press("q")
        assert app.ended is None  # the speaker quit; the talk goes on
        assert notes_threads() == ["cpviz-notes"]  # only the talk's own server thread
        until(lambda: server.clients == 0)


async def test_t_cycles_the_theme() -> None:
    app = NotesApp()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "cpviz-high-contrast"
        await pilot.press("t")
        assert app.theme != "cpviz-high-contrast"


async def test_talk_themes_register_and_switch() -> None:
    from textual.app import App

    from cpviz.talk.theme import HIGH_CONTRAST_NAME, next_theme, register_talk_themes

    app: App[None] = App()
    async with app.run_test(size=(40, 10)) as pilot:
        names = register_talk_themes(app)
        assert names[0] == HIGH_CONTRAST_NAME
        assert len(names) >= 2 and set(names) <= set(app.available_themes)
        for name in names:
            app.theme = name
            await pilot.pause()
            assert app.theme == name
        app.theme = HIGH_CONTRAST_NAME
        await pilot.pause()
        assert app.screen.styles.background.hex == "#000000"
        assert [next_theme(names, n) for n in names] == [*names[1:], names[0]]
        assert next_theme(names, "nord") == names[0]
