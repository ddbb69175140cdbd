"""The command line's recording half: ``--record``, ``cpviz replay`` and ``cpviz export``.

Kept apart from :mod:`cpviz.cli` so that file stays about parsing and dispatch. Every problem
with a recording becomes a :class:`~cpviz.engine.recording.RecordingError`, which the CLI prints
as one line naming the file and the line, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cpviz.engine.errors import UsageError
from cpviz.engine.recording import DEFAULT_MAX_MB, Header, Recorder, Recording, load

#: Smallest and largest ``--record-max-mb``.
MIN_MB, MAX_MB = 0.01, 1_000_000.0


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected megabytes, got {text!r}") from None
    if not MIN_MB <= value <= MAX_MB:
        raise argparse.ArgumentTypeError(f"must be from {MIN_MB:g} to {MAX_MB:g} MB, got {text}")
    return value


def add_record_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """``--record FILE`` and ``--record-max-mb`` on the screen's parser and (``sub``) on
    ``run``, where they set no default, so ``cpviz --record F run ...`` is not undone."""
    parser.add_argument(
        "--record",
        metavar="FILE",
        default=argparse.SUPPRESS if sub else None,
        help="write every event to FILE as it happens (JSON Lines; compressed if it ends in .gz)",
    )
    parser.add_argument(
        "--record-max-mb",
        type=_megabytes,
        default=argparse.SUPPRESS if sub else DEFAULT_MAX_MB,
        metavar="MB",
        help=f"stop recording when FILE holds this much JSON (default {DEFAULT_MAX_MB:g})",
    )


def add_commands(sub: Any, fps: Any) -> None:
    """The ``replay`` and ``export`` subcommands."""
    replay = sub.add_parser(
        "replay",
        help="play a recording on the live screen, or check it with --check",
        description=(
            "Play a recording through the same screen and Model as a live session, from its "
            "start at 1x. With --check, read it, say what it holds and exit."
        ),
    )
    replay.add_argument("file", metavar="FILE", help="a recording made with --record")
    replay.add_argument(
        "--check", action="store_true", help="only read and check the file, print a summary"
    )
    replay.add_argument("--json", action="store_true", help="with --check: print JSON")
    replay.add_argument("--fps", type=fps, default=25.0, help="screen refresh rate (default 25)")
    export = sub.add_parser(
        "export",
        help="convert a recording for other trace viewers (Perfetto, chrome://tracing)",
        description="Write a recording as Chrome Trace Event JSON, which Perfetto opens.",
    )
    export.add_argument("file", metavar="FILE", help="a recording made with --record")
    export.add_argument(
        "--format", choices=["perfetto"], default="perfetto", help="output format (perfetto)"
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="where to write (default: FILE's name with .perfetto.json)",
    )


# -- recording ----------------------------------------------------------------------------------


def start_recording(args: argparse.Namespace, lab: Any, argv: list[str]) -> Recorder | None:
    """A recorder on the lab's stream when ``--record`` was given. Call before ``lab.start``,
    so the recording holds everything from the first sample on."""
    path = getattr(args, "record", None)
    if not path:
        return None
    header = Header.now(
        lab.cores, lab.clock.now(), lab.workloads(), " ".join(["cpviz", *argv])
    )
    recorder = Recorder(path, header, max_bytes=int(args.record_max_mb * 1e6))
    lab.stream.add_tap(recorder.tap)
    return recorder


def finish_recording(recorder: Recorder | None, lab: Any) -> None:
    """After ``lab.close()``: write what the stream still held, finish the file, and say once
    on stderr if the size cap (or a write error) cut the recording short."""
    if recorder is None:
        return
    stream = lab.stream
    # The last frames the observed side sent before it stopped (a stopped run's end) are still
    # waiting to be decoded: drain once more, so the recording ends where the lab did.
    try:
        stream.drain()
    finally:
        stream.remove_tap(recorder.tap)
        status = recorder.close()
    if status.message:
        print(f"cpviz: warning: {status.message}", file=sys.stderr)


# -- replay -------------------------------------------------------------------------------------


def summary(recording: Recording) -> dict[str, Any]:
    """What a recording holds, as ``cpviz replay --check`` reports it."""
    from cpviz.engine.events import IncidentStart, RunEnd, RunStart, StallStart
    from cpviz.engine.replay import ReplaySource

    source = ReplaySource.from_recording(recording, paused=True)
    starts = {ev.run_id: ev for ev in recording.events if isinstance(ev, RunStart)}
    runs: list[dict[str, Any]] = []
    ended: set[int] = set()
    for ev in recording.events:
        if isinstance(ev, RunEnd):
            ended.add(ev.run_id)
            runs.append({
                "run_id": ev.run_id,
                "workload": ev.result.workload,
                "mode": ev.result.mode,
                "outcome": ev.result.outcome,
                "wall_s": round(ev.result.wall_s, 6),
            })
    for run_id, begun in starts.items():
        if run_id not in ended:
            runs.append({"run_id": run_id, "workload": begun.workload, "mode": begun.mode,
                         "outcome": "unfinished when the recording ended", "wall_s": None})
    runs.sort(key=lambda r: int(r["run_id"]))
    header = recording.header
    return {
        "file": recording.path,
        "cpviz": header.cpviz,
        "platform": header.platform,
        "cores": header.cores,
        "started": header.started,
        "command": header.command,
        "events": len(recording.events),
        "duration_s": round(source.duration, 6),
        "runs": runs,
        "incidents": sum(1 for ev in recording.events if isinstance(ev, IncidentStart)),
        "stalls": sum(1 for ev in recording.events if isinstance(ev, StallStart)),
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_replay(args: argparse.Namespace) -> int:
    recording = load(args.file)
    if args.check:
        info = summary(recording)
        if args.json:
            print(json.dumps(info))
            return 0
        print(
            f"{info['file']}: {_count(info['events'], 'event')} over "
            f"{info['duration_s']:.3f} s, {_count(len(info['runs']), 'run')}, "
            f"{_count(info['incidents'], 'loop freeze')}, {_count(info['stalls'], 'stall')}; "
            f"recorded {info['started']} by cpviz {info['cpviz']} on {info['platform']} "
            f"({info['cores']} cores)"
        )
        for run in info["runs"]:
            wall = "" if run["wall_s"] is None else f" in {run['wall_s']:.3f} s"
            print(f"  run {run['run_id']}: {run['workload']}:{run['mode']} {run['outcome']}{wall}")
        return 0

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "replay needs an interactive terminal; to check a file from a script use "
            "'cpviz replay FILE --check'"
        )
    from cpviz.app import CpvizApp
    from cpviz.engine.replay import ReplayController, ReplaySource

    source = ReplaySource.from_recording(recording)
    controller = ReplayController(source, recording.header.workloads, recording.path)
    CpvizApp(source, controller, fps=args.fps).run()
    return 0


# -- export -------------------------------------------------------------------------------------


def default_output(path: str) -> str:
    """``run.jsonl.gz`` -> ``run.perfetto.json``, beside it."""
    p = Path(path)
    name = p.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return str(p.with_name(f"{name or 'recording'}.perfetto.json"))


def cmd_export(args: argparse.Namespace) -> int:
    from cpviz.engine.export import export_perfetto

    recording = load(args.file)
    out = args.output or default_output(args.file)
    try:
        count = export_perfetto(recording, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {count} trace events to {out}; open it in Perfetto or chrome://tracing")
    return 0
