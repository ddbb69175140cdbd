"""``cpviz talk`` and ``cpviz serve``: the command-line side of talk mode.

Everything here checks its inputs before a screen opens, so a deck with a mistake, a missing
recording or a second talk on the same notes channel ends with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cpviz.crash import screen_status
from cpviz.engine.errors import CpvizError
from cpviz.talk.deck import Deck, Scene, builtin_deck, check_report, load_deck


class TalkError(CpvizError):
    """A talk that cannot start; the message is one line."""


def scene_file(folder: Path, index: int) -> Path:
    """Where scene ``index`` (from 0) is recorded: ``scene-01.jsonl.gz`` and on."""
    return folder / f"scene-{index + 1:02d}.jsonl.gz"


def add_talk_commands(
    sub: Any, options: Callable[[str], Sequence[argparse.ArgumentParser]]
) -> None:
    """``talk`` and ``serve``; ``options(name)`` gives the parent parsers of the global options
    that apply to a command (the probe settings and --fps, for a talk)."""
    talk = sub.add_parser(
        "talk",
        parents=options("talk"),
        help="present a deck of scenes (the built-in tour of the claims if no file is given)",
        description=(
            "Step through a deck of scenes with → and ←: each scene starts its workload from a "
            "clean state under a big title and caption. r restarts a scene, b blanks the "
            "screen, n shows the notes, t switches the theme."
        ),
    )
    talk.add_argument("deck", nargs="?", metavar="DECK.toml", help="a deck file (TOML)")
    talk.add_argument("--check", action="store_true", help="validate the deck and exit")
    talk.add_argument(
        "--notes", action="store_true",
        help="follow the running talk's speaker notes in this terminal",
    )
    talk.add_argument("--record-dir", metavar="DIR", help="record each scene as it runs")
    talk.add_argument(
        "--replay-dir", metavar="DIR",
        help="present the deck from recordings made with --record-dir (no live workload)",
    )
    talk.add_argument("--scene", type=int, default=1, metavar="N", help="start at scene N")
    serve = sub.add_parser(
        "serve",
        parents=options("serve"),
        help="show cpviz in a browser on 127.0.0.1 (needs the optional textual-serve)",
        description="Serve cpviz (or a talk) to a browser on this machine through textual-serve.",
    )
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    serve.add_argument(
        "--talk", nargs="?", const="", metavar="DECK.toml",
        help="serve a talk (the built-in deck if no file is given) instead of the live screen",
    )


def _deck(path: str | None) -> Deck:
    return load_deck(path) if path else builtin_deck()


def cmd_talk(args: argparse.Namespace, lab_factory: Any) -> int:
    if args.notes:
        return _follow_notes()
    deck = _deck(args.deck)
    if args.check:
        print(check_report(deck))
        return 0
    if args.record_dir and args.replay_dir:
        raise TalkError("--record-dir and --replay-dir cannot be used together")
    if not 1 <= args.scene <= len(deck.scenes):
        raise TalkError(f"--scene must be from 1 to {len(deck.scenes)}, got {args.scene}")
    if args.replay_dir:
        return _talk_from_recordings(deck, Path(args.replay_dir), args)
    return _talk_live(deck, args, lab_factory)


def _need_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise TalkError(
            "a talk needs an interactive terminal; to check a deck use 'cpviz talk --check'"
        )


def _notes_server() -> Any:
    """The speaker-notes channel, or None (with a warning) when it cannot open."""
    from cpviz.talk.notes import NotesServer

    server = NotesServer()
    try:
        server.start()
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"cpviz: warning: speaker notes are off: {exc}", file=sys.stderr)
        return None
    return server


def _talk_live(deck: Deck, args: argparse.Namespace, lab_factory: Any) -> int:
    from cpviz.engine.observed import ObservedController
    from cpviz.engine.source import LiveSource
    from cpviz.talk.app import TalkApp

    _need_terminal()
    record_dir = Path(args.record_dir) if args.record_dir else None
    if record_dir is not None:
        try:
            record_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TalkError(f"cannot use {record_dir}: {exc.strerror or exc}") from None
    lab = lab_factory(args)
    notes = None
    try:
        lab.start()
        notes = _notes_server()
        recorder = _scene_recorder(lab, record_dir, deck) if record_dir is not None else None
        app = TalkApp(
            deck, LiveSource(lab.stream, lab.cores), ObservedController(lab), fps=args.fps,
            scene_recorder=recorder, notes=notes, first=args.scene - 1,
        )
        app.run()
    finally:
        lab.close()
        if notes is not None:
            notes.close()
    status = screen_status(app)
    if status:
        return status
    if record_dir is not None:
        print(f"cpviz: scenes recorded in {record_dir}; present them with "
              f"'cpviz talk {args.deck or ''} --replay-dir {record_dir}'".replace("  ", " "),
              file=sys.stderr)
    return 0


class _TappedRecorder:
    """A recorder fed by the lab's stream tap, detached before it closes."""

    def __init__(self, lab: Any, path: Path, command: str) -> None:
        from cpviz.engine.recording import Header, Recorder

        self._stream = lab.stream
        header = Header.now(lab.cores, lab.clock.now(), lab.workloads(), command)
        self._recorder = Recorder(path, header)
        self._stream.add_tap(self._recorder.tap)

    def close(self) -> Any:
        self._stream.remove_tap(self._recorder.tap)
        return self._recorder.close()


def _scene_recorder(lab: Any, folder: Path, deck: Deck) -> Any:
    def make(index: int, scene: Scene) -> _TappedRecorder:
        return _TappedRecorder(lab, scene_file(folder, index),
                               f"cpviz talk ({deck.source}) scene {index + 1}: {scene.title}")

    return make


def _talk_from_recordings(deck: Deck, folder: Path, args: argparse.Namespace) -> int:
    from cpviz.engine.recording.index import scan
    from cpviz.engine.replay import ReplayController, ReplaySource
    from cpviz.talk.app import TalkApp

    if not folder.is_dir():
        raise TalkError(f"--replay-dir {folder} is not a directory (of recordings made with "
                        "'cpviz talk --record-dir')")
    needed = [i for i, scene in enumerate(deck.scenes) if scene.workload is not None]
    missing = [scene_file(folder, i).name for i in needed if not scene_file(folder, i).exists()]
    if missing:
        raise TalkError(
            f"{folder} lacks the recordings of {len(missing)} scene(s): {', '.join(missing)}; "
            "make them with 'cpviz talk --record-dir'"
        )
    # Each checked whole now, so a bad one is one line before the talk starts; each streamed
    # when its scene comes.
    recordings = {i: scan(scene_file(folder, i)) for i in needed}
    _need_terminal()
    first = next(iter(recordings.values()), None)
    cores = first.header.cores if first is not None else 1
    infos = first.header.workloads if first is not None else ()

    def empty() -> tuple[ReplaySource, ReplayController]:
        source = ReplaySource([], cores)
        return source, ReplayController(source, infos, "")

    def scene_source(index: int) -> tuple[ReplaySource, ReplayController]:
        recording = recordings.get(index)
        if recording is None:
            return empty()
        source = ReplaySource.open(recording.path, index=recording)
        return source, ReplayController(source, recording.header.workloads, recording.path)

    source, controller = empty()
    notes = _notes_server()
    try:
        app = TalkApp(deck, source, controller, fps=args.fps, scene_source=scene_source,
                      notes=notes, first=args.scene - 1)
        app.run()
    finally:
        if notes is not None:
            notes.close()
    return screen_status(app)


def _follow_notes() -> int:
    from cpviz.talk.notes import NotesClient
    from cpviz.talk.notes_app import NotesApp

    try:
        client = NotesClient()
    except (OSError, RuntimeError, ValueError) as exc:
        raise TalkError(str(exc)) from None
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise TalkError("the notes view needs an interactive terminal")
    app = NotesApp(client)
    app.run()
    return screen_status(app)


def cmd_serve(args: argparse.Namespace) -> int:
    from cpviz.talk.serve import ServeUnavailable, serve

    if not 1 <= args.port <= 65535:
        raise TalkError(f"--port must be from 1 to 65535, got {args.port}")
    command = f"{sys.executable} -m cpviz"
    if args.talk is not None:
        command += " talk" + (f" {args.talk}" if args.talk else "")
    try:
        return serve(command, port=args.port)
    except ServeUnavailable as exc:
        raise TalkError(str(exc)) from None
