"""Command line: ``cpviz`` (the live screen), ``cpviz run`` (headless) and ``cpviz list``.

Every mistake on the command line ends with one line on stderr that says what was wrong and
what is accepted, and exit status 2; never a traceback. Textual is imported only when the
screen is wanted, so headless runs and pool workers start quickly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from cpviz import __version__
from cpviz.argtypes import bounded, duration
from cpviz.connect_cli import add_command as add_connect_command
from cpviz.crash import (
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    report,
    terminate,
)
from cpviz.engine.errors import CpvizError, UsageError
from cpviz.engine.recording import DEFAULT_MAX_MB
from cpviz.record_cli import add_commands, finish_recording, megabytes, start_recording
from cpviz.talk.commands import add_talk_commands
from cpviz.workloads.registry import (
    Workload,
    catalogue,
    find,
)

if TYPE_CHECKING:
    from cpviz.engine.model import Model
    from cpviz.engine.observed import ObservedLab

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 without the usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_positive_ms = bounded(1, 60_000, unit="ms", noun="milliseconds")


def _setting(text: str) -> tuple[str, str]:
    """``--set key=value``, split once here; the workload types the value (Workload.resolve)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"takes key=value, got {text!r}")
    return name.strip(), value.strip()


def _core_count(text: str) -> int:
    """``--cores N``: from 1 to the CPUs this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= usable:  # the lab's own wording, wherever the option was written
        raise UsageError(f"--cores must be from 1 to {usable}, got {text}")
    return value


#: The screen's own "command" in the table below: ``cpviz`` with no subcommand.
SCREEN = "the live screen"


@dataclass(frozen=True)
class _Global:
    """An option that may be written before the subcommand or after it."""

    flag: str
    dest: str
    default: Any
    #: Commands it means something for (SCREEN: no subcommand).
    applies: tuple[str, ...]
    options: dict[str, Any]


_PROBES = (SCREEN, "run", "bench", "talk")
GLOBALS: tuple[_Global, ...] = (
    _Global("--threshold-ms", "threshold_ms", 100.0, _PROBES, dict(
        type=_positive_ms, metavar="MS",
        help="how long the loop may stall before the alarm fires (default 100)")),
    _Global("--sample-hz", "sample_hz", 10.0, (*_PROBES, "connect"), dict(
        type=bounded(0.5, 100), metavar="HZ", help="core sampling rate (default 10)")),
    _Global("--cores", "cores", None, _PROBES, dict(
        type=_core_count, metavar="N",
        help="pin the lab and its workers to N cores (CPU affinity; default: all)")),
    _Global("--start", "start", None, (SCREEN,), dict(
        metavar="WORKLOAD[:MODE]", help="start a workload as soon as the screen opens")),
    _Global("--set", "settings", [], (SCREEN, "run"), dict(
        action="append", type=_setting, metavar="KEY=VALUE",
        help="a parameter of the workload run or --start'ed, e.g. --set n=500 (repeatable)")),
    _Global("--fps", "fps", 25.0, (SCREEN, "replay", "talk", "connect"), dict(
        type=bounded(1, 60), metavar="FPS", help="screen refresh rate (default 25)")),
    _Global("--python", "python", None, (SCREEN, "run", "bench"), dict(
        metavar="PATH",
        help="run the observed side (the lab's workloads, or a program given as app.py) with "
             "this interpreter, Python >= 3.11: a free-threaded build, say")),
    _Global("--record", "record", None, (SCREEN, "run", "connect"), dict(
        metavar="FILE",
        help="write every event to FILE as it happens (JSON Lines; compressed if it ends in "
             ".gz)")),
    _Global("--record-max-mb", "record_max_mb", DEFAULT_MAX_MB, (SCREEN, "run", "connect"), dict(
        type=megabytes, metavar="MB",
        help=f"stop recording when FILE holds this much JSON (default {DEFAULT_MAX_MB:g})")),
)
#: Where options written before the subcommand land, until _settle merges them.
_EARLY = "early_"


def _globals_for(command: str, *, early: bool = False) -> list[_Parser]:
    """A parent parser with the global options that apply to ``command`` (every one of them,
    under dests of their own, for what comes before the subcommand)."""
    parent = _Parser(add_help=False)
    for opt in GLOBALS:
        if early or command in opt.applies:
            parent.add_argument(opt.flag, dest=(_EARLY if early else "") + opt.dest,
                                default=argparse.SUPPRESS, **opt.options)
    return [parent]


def _settle(args: argparse.Namespace, extra: Sequence[str]) -> None:
    """Give every command the global options it takes, wherever they were written: refuse
    one that does not apply, merge ``--set`` from both places (a later value wins
    otherwise), fill in the defaults."""
    command = args.command or SCREEN
    name = "cpviz" if args.command is None else f"cpviz {args.command}"
    where = f"'{name}'"
    by_flag = {opt.flag: opt for opt in GLOBALS}
    for token in extra:
        opt = by_flag.get(token.partition("=")[0])
        if opt is not None:
            raise UsageError(f"{opt.flag} does not apply to {where}; it is for: "
                             + ", ".join(opt.applies))
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see '{name} --help')")
    for opt in GLOBALS:
        early = getattr(args, _EARLY + opt.dest, None)
        late = getattr(args, opt.dest, None)
        if hasattr(args, _EARLY + opt.dest):
            delattr(args, _EARLY + opt.dest)
        given = early is not None or late is not None
        if given and command not in opt.applies:
            raise UsageError(f"{opt.flag} does not apply to {where}; it is for: "
                             + ", ".join(opt.applies))
        if opt.dest == "settings":
            value: Any = [*(early or []), *(late or [])]
        else:
            value = late if late is not None else early
        setattr(args, opt.dest, value if value is not None else opt.default)


def build_parser() -> argparse.ArgumentParser:
    """Subcommands, and the global options each takes (see GLOBALS and _settle)."""
    names = ", ".join(w.key for w in catalogue())
    parser = _Parser(
        prog="cpviz",
        parents=_globals_for(SCREEN, early=True),
        description=(
            "See concurrency and parallelism on your own cores: one lane per CPU core, a "
            "timeline of every coroutine, and an alarm that names the line that froze the "
            "event loop. Run with no command for the live screen. Options such as --cores "
            "and --set may be written before or after the command."
        ),
        epilog=(
            f"workloads: {names}. Examples: 'cpviz --start cpu:processes', "
            "'cpviz run io --mode concurrent --set n=1000 --json', 'cpviz list'. Your own "
            "program, as you run it: 'cpviz -- python app.py args' (the screen) or 'cpviz run "
            "--json -- python app.py args' (headless)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cpviz {__version__}")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        parents=_globals_for("run"),
        help="run one workload without the screen and print what it measured",
        description=(
            "Run one workload headless, with every probe on, and print its result; or your "
            "program as you run it, after '--' (cpviz run [options] -- python app.py args)."
        ),
    )
    run.add_argument(
        "workload", nargs="?",
        help=f"one of: {names}; or your own code as path/to/file.py:function. Or your whole "
        "program as you run it: cpviz run [options] -- python app.py args (or app.py args)",
    )
    run.add_argument("--mode", help="the workload's mode (default: its first)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument(
        "--baseline",
        action="store_true",
        help="run the serial mode first, so the speedup is measured rather than missing",
    )
    run.add_argument(
        "--duration", type=duration, metavar="S",
        help="a program: stop it (as Ctrl+C would) after S seconds and report",
    )
    run.add_argument(
        "--output", metavar="FILE",
        help="a program: write its own output to FILE (default: stderr, so --json stays clean)",
    )
    bench = sub.add_parser(
        "bench",
        parents=_globals_for("bench"),
        help="measure the key comparisons on this machine and print the proof table",
        description=(
            "Run I/O serial vs concurrent vs bounded, CPU serial vs threads vs processes for "
            "each kind, a blocking call vs its fixes, and the Amdahl sweep; print one table."
        ),
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--quick", action="store_true", help="smaller runs: under a minute on two cores"
    )
    add_commands(sub, _globals_for)
    add_connect_command(sub, _globals_for)
    add_talk_commands(sub, _globals_for)
    shot = sub.add_parser(
        "screenshot",
        help="draw the screen of a recording at a moment, as SVG",
        description="Replay FILE paused at a moment and write the screen as SVG.",
    )
    shot.add_argument("file", metavar="FILE", help="a recording made with --record")
    shot.add_argument("output", metavar="OUT.svg", help="where to write the SVG")
    shot.add_argument(
        "--at", default="mid",
        help="seconds from the start, or one of: mid, end, incident, stall (default mid)",
    )
    shot.add_argument(
        "--size", default="120x40", metavar="WxH", help="terminal size (default 120x40)"
    )
    listing = sub.add_parser("list", help="list the workloads, their modes and parameters")
    listing.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _error(message: str) -> int:
    print(f"cpviz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    from cpviz.program_cli import split_program

    given = list(sys.argv[1:] if argv is None else argv)
    # A program's own command line (after ``--``, or from its script on) is not cpviz's to
    # parse: it is run as it is.
    words, program = split_program(given)
    try:
        args, extra = build_parser().parse_known_args(words)
        _settle(args, extra)
    except UsageError as exc:
        return _error(str(exc))
    args.argv = given
    args.program = program
    if program is not None and args.command not in (None, "run"):
        return _error(f"cpviz {args.command} runs no program; a program goes after 'cpviz --' "
                      "(the live screen) or 'cpviz run --' (headless)")
    try:
        if args.command in ("replay", "export"):
            from cpviz.record_cli import cmd_export, cmd_replay

            return cmd_replay(args) if args.command == "replay" else cmd_export(args)
        if args.command == "list":
            return cmd_list(args.json)
        if args.command == "connect":
            from cpviz.connect_cli import cmd_connect

            return cmd_connect(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "screenshot":
            return cmd_screenshot(args)
        if args.command in ("talk", "serve"):
            from cpviz.talk.commands import cmd_serve, cmd_talk

            if args.command == "serve":
                return cmd_serve(args)
            return cmd_talk(args, lambda a: _lab(a, catalogue()))
        return cmd_tui(args)
    except CpvizError as exc:  # the one place a mistake becomes one line and status 2
        return _error(str(exc))
    except KeyboardInterrupt:
        print("cpviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line naming where its traceback went, never status 0
        if isinstance(exc, BrokenPipeError):
            raise  # the reader went away: entry() ends quietly
        print(report(exc), file=sys.stderr)
        return EXIT_CRASH


# -- list ---------------------------------------------------------------------------------------


def cmd_list(as_json: bool) -> int:
    workloads = catalogue()
    if as_json:
        print(json.dumps([_describe(i, w) for i, w in enumerate(workloads, 1)], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for i, w in enumerate(workloads, 1):
        console.print(
            f"[b]{i}  {w.key}[/b] — {w.title}   modes: "
            + ", ".join(f"[b]{m}[/b]" if j == 0 else m for j, m in enumerate(w.modes))
        )
        table = Table(box=None, padding=(0, 2), show_header=True, header_style="dim")
        table.add_column("  parameter")
        table.add_column("default", justify="right")
        table.add_column("range")
        table.add_column("meaning")
        for p in w.params:
            if p.choices:
                span = " | ".join(p.choices)
            elif p.low is not None:
                span = f"{_fmt(p.low)}–{_fmt(p.high)}"
            else:
                span = "true/false"
            meaning = p.help + (" (live: [ ] or { } while it runs)" if p.live else "")
            table.add_row(f"  {p.name}", _fmt(p.default), span, meaning)
        console.print(table)
        console.print()
    console.print(
        "Start one with its key in the live screen, or headless: "
        "cpviz run WORKLOAD --mode MODE --set name=value"
    )
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe(index: int, w: Workload) -> dict[str, Any]:
    return {
        "key": str(index),
        "name": w.key,
        "title": w.title,
        "modes": list(w.modes),
        "params": [
            {"name": p.name, "type": p.kind.__name__, "default": p.default, "min": p.low,
             "max": p.high, "choices": list(p.choices), "live": p.live, "help": p.help}
            for p in w.params
        ],
        "explanation": w.explanation,
    }


# -- run ----------------------------------------------------------------------------------------


def _workload(name: str) -> tuple[Workload, tuple[Workload, ...], str | None]:
    """The workload a name means (a catalogue key or ``file.py:function``), the lab's list, and
    the user's spec when it is their code (the observed process loads it too)."""
    from cpviz.workloads.user import inspect_user_workload, is_user_spec

    if is_user_spec(name):
        user = inspect_user_workload(name)
        return user, (*catalogue(), user), name
    return find(name), catalogue(), None


def _lab(
    args: argparse.Namespace,
    workloads: Sequence[Workload],
    *,
    user: str | None = None,
    output: TextIO | None = None,
) -> ObservedLab:
    """The observed side with the probe settings of the command line (not started yet); bad
    ``--cores`` is a usage error."""
    from cpviz.engine.observed import ObservedLab
    from cpviz.interpreters import LAB_NEEDS
    from cpviz.interpreters import check as check_interpreter

    # --python: checked before anything starts, so a missing anyio is one line, not a crash.
    python = None if args.python is None else check_interpreter(
        args.python, LAB_NEEDS, what="the lab").path
    try:
        return ObservedLab(
            workloads,
            threshold_s=args.threshold_ms / 1000.0,
            sample_hz=args.sample_hz,
            pin_cores=args.cores,
            user=user,
            output=output,
            python=python,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    if args.program is not None:
        if args.workload is not None:
            raise UsageError(f"give a workload ({args.workload}) or a program after --, not both")
        from cpviz.program_cli import cmd_run_program

        return cmd_run_program(args, args.program, _print_result)
    if args.workload is None:
        raise UsageError("name a workload (see 'cpviz list'), file.py:function, or a program "
                         "after --, e.g. cpviz run -- python app.py")
    for option in ("duration", "output"):
        if getattr(args, option, None) is not None:
            raise UsageError(f"--{option} is for a program run as it is (cpviz run -- python "
                             "app.py); a workload runs to its own end")
    workload, workloads, user = _workload(args.workload)
    mode, params = workload.resolve(args.mode, dict(args.settings))
    if args.baseline and workload.serial_mode is None:
        raise UsageError(f"--baseline needs a serial mode, and {workload.key} has none")

    from cpviz.engine.model import Model

    # The observed program's own output goes to stderr, so --json on stdout stays parseable.
    lab = _lab(args, workloads, user=user, output=sys.stderr)
    recorder = start_recording(args, lab, args.argv)
    model = Model(lab.cores)
    interrupted: int | None = None
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    result = None
    try:
        lab.start()
        plan = [(workload.serial_mode, params)] if args.baseline and mode != "serial" else []
        plan.append((mode, params))
        for run_mode, run_params in plan:
            assert run_mode is not None
            result = _run_one(lab, model, workload, run_mode, run_params)
    except KeyboardInterrupt:
        interrupted = EXIT_INTERRUPTED
    except Terminated:
        interrupted = EXIT_TERMINATED
    finally:
        lab.close()
        finish_recording(recorder, lab)
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    if interrupted is not None:
        print("cpviz: interrupted; every run was stopped", file=sys.stderr)
        return interrupted
    assert result is not None
    if args.json:
        print(json.dumps(result, indent=None))
    else:
        _print_result(result)
    return 0 if result["outcome"] in ("completed",) else 1


def _run_one(
    lab: ObservedLab, model: Model, workload: Workload, mode: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Run once, showing progress on stderr when it is a terminal, and return the JSON shape."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cpviz.engine.headless import run_to_end

    run_id = lab.start_run(workload, mode, params)
    err = Console(stderr=True)
    with Progress(
        TextColumn(f"{workload.key}:{mode}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        bar = progress.add_task("run", total=workload.total(mode, params) or None)

        def show(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total or None)

        return run_to_end(lab, model, run_id, timeout=None, on_progress=show)


def _print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"cpviz run {result['workload']} --mode {result['mode']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    speedup = result["speedup"]
    rows = [
        ("outcome", result["outcome"]),
        ("wall", f"{result['wall_s']:.3f} s"),
        ("cpu (process + children)", f"{result['cpu_s']:.3f} s"),
        ("parallelism (cpu ÷ wall)", f"{result['parallelism']:.2f} cores"),
        (
            "speedup vs serial",
            "—" if speedup is None else f"×{speedup:.2f}  ({result['speedup_basis']})",
        ),
        ("tasks traced", str(result["tasks"])),
        ("task steps traced", str(result["steps"])),
        ("worst loop lag", f"{result.get('max_loop_lag_s', 0.0) * 1000:.1f} ms"),
        ("loop freezes", str(len(result["incidents"]))),
    ]
    core = {"workload", "mode", "params", "outcome", "wall_s", "cpu_s", "parallelism", "speedup",
            "speedup_basis", "tasks", "steps", "incidents", "max_loop_lag_s", "sweep"}
    for key, value in result.items():
        if key not in core:
            rows.append((key.replace("_", " "), _fmt_extra(value)))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if result.get("sweep"):
        console.print(_sweep_table(result["sweep"]))
    for inc in result["incidents"][:10]:
        console.print(f"  {_incident_line(inc)}", markup=False, highlight=False, soft_wrap=True)
    if len(result["incidents"]) > 10:
        console.print(f"  … and {len(result['incidents']) - 10} more")
    console.print(f"params: {json.dumps(result['params'])}")


def _incident_line(inc: dict[str, Any]) -> str:
    """One freeze as ``cpviz run`` prints it: how long, when, why, and where."""
    text = f"froze {inc['duration_s'] * 1000:.0f} ms at +{inc['start_s']:.2f} s"
    cause = inc.get("cause")
    if cause in ("gil", "cpu", "gc"):
        return f"{text} — {cause}: {inc.get('cause_detail') or ''}"
    where = f"{inc['file']}:{inc['line']} in {inc['function']}" if inc["file"] else "?"
    call = f"{inc['blocking_call']} at " if inc.get("blocking_call") else ""
    text += f" — {cause + ': ' if cause else ''}{call}{where}"
    return text + (f" — {inc['code']}" if inc["code"] else "")


# -- bench --------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cpviz.proof import Row, print_table, run_bench

    lab = _lab(args, catalogue())  # checks --cores before anything runs
    err = Console(stderr=True)
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            bar = progress.add_task("bench", total=None)

            def on_row(index: int, total: int, row: Row) -> None:
                progress.update(bar, completed=index, total=total, description=row.name)
                if not err.is_terminal:
                    print(f"cpviz bench: {index + 1}/{total} {row.name}", file=sys.stderr)

            report = run_bench(lab, args.quick, on_row)
    except KeyboardInterrupt:
        print("cpviz: interrupted; every run was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    failed = [r for r in report["rows"] if r["outcome"] != "completed"]
    return 1 if failed else 0


def _sweep_table(points: list[dict[str, float]]) -> Any:
    """One column per measured figure, one row per worker count."""
    from rich.table import Table

    names = list(dict.fromkeys(k for p in points for k in p if k != "x"))
    table = Table(title="sweep: measured at each worker count")
    table.add_column("workers", justify="right")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for p in points:
        table.add_row(f"{p['x']:g}", *(_fmt_extra(p[n]) if n in p else "—" for n in names))
    return table


def _fmt_extra(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or "—"
    return _fmt(value)


# -- screenshot ---------------------------------------------------------------------------------


def cmd_screenshot(args: argparse.Namespace) -> int:
    import asyncio

    from cpviz.engine.recording.index import scan
    from cpviz.screenshot import position, render

    width, sep, height = args.size.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise UsageError(f"--size takes WIDTHxHEIGHT, e.g. 120x40; got {args.size!r}")
    size = (int(width), int(height))
    if not (40 <= size[0] <= 400 and 10 <= size[1] <= 200):
        raise UsageError(f"--size must be from 40x10 to 400x200, got {args.size}")
    index = scan(args.file)  # checks the whole file; holds none of its events
    at = position(index, args.at)
    svg = asyncio.run(render(args.file, at, size, index=index))
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(svg)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}: {args.file} at {at:.2f} s, {size[0]}x{size[1]}")
    return 0


# -- the screen ---------------------------------------------------------------------------------


def _parse_start(
    spec: str | None,
) -> tuple[tuple[str, str | None] | None, tuple[Workload, ...], str | None]:
    """``--start`` as (key, mode), the workloads the lab offers (yours last, if given), and
    your code's spec when it is yours."""
    if spec is None:
        return None, catalogue(), None
    from cpviz.workloads.user import is_user_spec

    if is_user_spec(spec):
        user, workloads, _ = _workload(spec)
        return (user.key, None), workloads, spec
    key, _, mode = spec.partition(":")
    workload = find(key.strip())
    if mode:
        workload.resolve(mode.strip(), None)
    return (workload.key, (mode.strip() or None)), catalogue(), None


def cmd_tui(args: argparse.Namespace) -> int:
    if args.program is not None:
        from cpviz.program_cli import cmd_tui_program

        return cmd_tui_program(args, args.program)
    start, workloads, user = _parse_start(args.start)
    settings: dict[str, Any] = {}
    if args.settings:
        if start is None:
            raise UsageError("--set needs --start WORKLOAD to say which workload it is for")
        chosen = next(w for w in workloads if w.key == start[0])
        _, params = chosen.resolve(start[1], dict(args.settings))
        settings = {name: params[name] for name, _ in args.settings}
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the live screen needs an interactive terminal; for scripts use 'cpviz run "
            "WORKLOAD --json'"
        )
    from cpviz.engine.observed import ObservedController
    from cpviz.live import run_live

    lab = _lab(args, workloads, user=user)
    return run_live(args, lab, ObservedController, start=start, start_settings=settings)


def entry() -> None:
    """Console-script entry point (and ``python -m cpviz``)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``cpviz bench --json | head``): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    sys.exit(code)
