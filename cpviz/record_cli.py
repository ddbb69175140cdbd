"""The command line's recording half: ``--record``, ``cpviz replay`` and ``cpviz export``.

Kept apart from :mod:`cpviz.cli` so that file stays about parsing and dispatch. Every problem
with a recording becomes a :class:`~cpviz.engine.recording.RecordingError`, which the CLI prints
as one line naming the file and the line, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cpviz.argtypes import bounded
from cpviz.crash import screen_status
from cpviz.engine.errors import UsageError
from cpviz.engine.recording import Header, Recorder
from cpviz.engine.recording.index import Index, scan

#: Smallest and largest ``--record-max-mb``.
MIN_MB, MAX_MB = 0.01, 1_000_000.0


#: ``--record-max-mb``: a size in megabytes, within MIN_MB and MAX_MB.
megabytes = bounded(MIN_MB, MAX_MB, unit="MB", noun="megabytes")


def add_commands(sub: Any, options: Callable[[str], Sequence[argparse.ArgumentParser]]) -> None:
    """The ``replay`` and ``export`` subcommands; ``options(name)`` gives the parent parsers of
    the global options that apply to a command."""
    replay = sub.add_parser(
        "replay",
        parents=options("replay"),
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
    export = sub.add_parser(
        "export",
        parents=options("export"),
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
    export.add_argument(
        "--force", action="store_true", help="overwrite OUT if it exists already"
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


#: Runs ``--check`` lists one by one; the rest are counted.
MAX_LISTED_RUNS = 1000


def summary(index: Index) -> dict[str, Any]:
    """What a recording holds, as ``cpviz replay --check`` reports it."""
    runs: list[dict[str, Any]] = []
    for run in sorted(index.runs, key=lambda r: r.run_id)[:MAX_LISTED_RUNS]:
        finished = run.end is not None and run.outcome is not None
        runs.append({
            "run_id": run.run_id,
            "workload": run.workload,
            "mode": run.mode,
            "outcome": run.outcome if finished else "unfinished when the recording ended",
            "wall_s": round(run.wall_s, 6) if finished and run.wall_s is not None else None,
        })
    header = index.header
    return {
        "file": index.path,
        "cpviz": header.cpviz,
        "platform": header.platform,
        "cores": header.cores,
        "started": header.started,
        "command": header.command,
        "events": index.events,
        "duration_s": round(index.duration, 6),
        "runs": runs,
        "more_runs": max(0, len(index.runs) - MAX_LISTED_RUNS),
        "incidents": index.freezes,
        "stalls": index.stalls,
        "os_samples": index.os_samples,
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_replay(args: argparse.Namespace) -> int:
    index = scan(args.file)  # every line checked: what passes here replays, exports and draws
    if args.check:
        info = summary(index)
        if args.json:
            print(json.dumps(info))
            return 0
        print(
            f"{info['file']}: {_count(info['events'], 'event')} over "
            f"{info['duration_s']:.3f} s, {_count(len(info['runs']), 'run')}, "
            f"{_count(info['incidents'], 'loop freeze')}, {_count(info['stalls'], 'stall')}, "
            f"{info['os_samples']} batches of thread and process samples; "
            f"recorded {info['started']} by cpviz {info['cpviz']} on {info['platform']} "
            f"({info['cores']} cores)"
        )
        for run in info["runs"]:
            wall = "" if run["wall_s"] is None else f" in {run['wall_s']:.3f} s"
            print(f"  run {run['run_id']}: {run['workload']}:{run['mode']} {run['outcome']}{wall}")
        if info["more_runs"]:
            print(f"  … and {_count(info['more_runs'], 'more run')}")
        return 0

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "replay needs an interactive terminal; to check a file from a script use "
            "'cpviz replay FILE --check'"
        )
    from cpviz.app import CpvizApp
    from cpviz.engine.replay import ReplayController, ReplaySource

    source = ReplaySource.open(args.file, index=index)
    controller = ReplayController(source, index.header.workloads, index.path)
    app = CpvizApp(source, controller, fps=args.fps)
    try:
        app.run()
    finally:
        source.close()
    return screen_status(app)


# -- export -------------------------------------------------------------------------------------


def default_output(path: str) -> str:
    """``run.jsonl.gz`` -> ``run.perfetto.json``, beside it."""
    p = Path(path)
    name = p.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return str(p.with_name(f"{name or 'recording'}.perfetto.json"))


def _check_output(source: str, out: str, force: bool) -> None:
    """Refuse to write over a file unless asked to, and never over the recording itself."""
    target = Path(out)
    if target.is_dir():
        raise UsageError(f"cannot write {out}: it is a directory")
    if not target.exists():
        return
    try:
        same = target.samefile(source)
    except OSError:
        same = False
    if same:
        raise UsageError(f"{out} is the recording being exported; name another output with -o")
    if not force:
        raise UsageError(f"{out} exists already; add --force to overwrite it, or name "
                         "another output with -o")


def cmd_export(args: argparse.Namespace) -> int:
    from cpviz.engine.export import export_perfetto

    out = args.output or default_output(args.file)
    _check_output(args.file, out, args.force)
    try:
        count = export_perfetto(args.file, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {count} trace events to {out}; open it in Perfetto or chrome://tracing")
    return 0
