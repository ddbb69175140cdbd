"""Codec: today's hand-written event codec against msgspec, on a recording-like mix of events.

The question (should the dataclass codec in :mod:`cpviz.engine.recording` give way to msgspec's
typed Structs?) is one of speed, bytes and churn, so this script measures the first two on the
same events in the same run. The mix is what a step-heavy recording holds: 100,000 ``TaskStep``
and 10,000 ``TaskSpawn``, interleaved with core samples (with placements), loop lag, metrics,
run progress, incidents with 30-frame stacks, and runs that start and end with a ``RunResult``.

Arms, each timed as the median of ``--runs`` rounds (round robin, so noise falls on all alike):

- **today**: ``encode_lines`` (pack + format, as the recorder and its writer do) to UTF-8
  bytes, and back with ``json.loads`` + ``decode_event`` per line, as the reader does.
  ``pack`` alone, the part the recorded process pays, is reported beside.
- **msgspec, native**: as if cpviz's events *were* frozen Structs (a tagged union on ``type``,
  unknown fields forbidden), encoded to JSON Lines (``Encoder.encode_lines``, the same file
  format as today) and to one MessagePack array, decoded with type checking
  (``Decoder(Union).decode_lines`` / ``msgpack.Decoder(list[Union])``).
- **msgspec, converted**: events stay dataclasses, so encoding first converts each to its Struct
  and decoding converts each Struct back, with the fastest hand-built converters (positional
  construction from ``attrgetter``, nested frames and results recursed).
- **msgspec on the dataclasses**: msgspec encodes and decodes a single dataclass type directly,
  but not a union of them, so this arm splices the ``type`` tag into each line and decodes each
  line twice (peek the tag, then the dataclass): what keeping dataclasses would cost.

The Structs are derived from the dataclasses with ``msgspec.defstruct`` (same names, fields,
types and defaults), so they cannot drift from ``events.py`` and mypy need not know msgspec.
msgspec is not a cpviz dependency: without it the script says so and times today's codec only.
Also checked once, untimed: both sides decode each other's files, the error messages for a bad
field, and what msgspec does with dataclasses (unions, unknown fields, tuples inside ``Any``).

The value is today's decode time over msgspec's (JSON Lines, native Structs): how many times
faster reading a recording would be. ``--quick`` uses a quarter of the events and 5 rounds.

    python bench/codec.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import gzip
import importlib
import json
import operator
import platform
import random
import statistics
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from cpviz.engine.events import (
    CoreSample,
    Event,
    Frame,
    IncidentEnd,
    IncidentRecord,
    IncidentStart,
    LoopLag,
    Metric,
    Placement,
    RunEnd,
    RunProgress,
    RunResult,
    RunStart,
    TaskSpawn,
    TaskStep,
)
from cpviz.engine.recording import decode_event, encode_lines, pack

try:
    msgspec: Any = importlib.import_module("msgspec")
except ImportError:
    msgspec = None

STEPS = 100_000
SPAWNS_EVERY = 10  # one spawn per 10 steps: 10,000
SAMPLE_EVERY = 170  # core sample and loop lag: ~600 each, as a 10 Hz sampler over a minute
METRIC_EVERY = 100
PROGRESS_EVERY = 1_000
INCIDENT_EVERY = 5_000
RUNS_IN_MIX = 5
STACK_DEPTH = 30
CORES = 8
TARGET = 1.0


# -- the event mix ------------------------------------------------------------------------------


def make_events(steps: int, seed: int = 7) -> list[Event]:
    """A deterministic, recording-like interleaving; times and ids have realistic digits."""
    rng = random.Random(seed)
    events: list[Event] = []
    task_base = 140_000_000_000_000
    run_len = max(1, steps // RUNS_IN_MIX)
    run_id = 0
    incident = 0
    t = 1000.0 + rng.random()

    def frames(n: int) -> tuple[Frame, ...]:
        out = []
        for d in range(n):
            origin: typing.Literal["user", "library", "engine"] = (
                "library" if d < n // 2 else "user"
            )
            out.append(Frame(f"/home/someone/project/pkg/module_{d % 7}.py", 10 + 3 * d,
                             f"function_{d}", f"result = await helper_{d}(value, timeout=5)",
                             origin))
        return tuple(out)

    def result(rid: int) -> RunResult:
        records = tuple(
            IncidentRecord(rng.random(), 0.1 + rng.random(), "/home/someone/project/app.py",
                           42 + i, "handler", "time.sleep(0.5)", "time.sleep")
            for i in range(3)
        )
        return RunResult("io", "concurrent", (("calls", 1000), ("latency_s", 0.2)),
                         wall_s=1.5 + rng.random(), cpu_s=rng.random(),
                         parallelism=rng.random() * CORES, speedup=10 * rng.random(),
                         speedup_basis="measured", incidents=records, outcome="completed",
                         tasks=rid * 100, steps=rid * 1000,
                         extra=(("lost_updates", 3), ("p99_ms", 12.5)))

    for i in range(steps):
        t += rng.random() * 2e-5
        if i % run_len == 0:
            if run_id:
                events.append(RunEnd(t, run_id, result(run_id)))
            run_id += 1
            events.append(RunStart(t, run_id, "io", "concurrent",
                                   (("calls", 1000), ("latency_s", 0.2), ("name", "fan-out")),
                                   total=run_len))
        tid = task_base + rng.randrange(1 << 24) * 16
        if i % SPAWNS_EVERY == 0:
            events.append(TaskSpawn(t, tid, f"Task-{i // SPAWNS_EVERY}", run_id,
                                    task_base + rng.randrange(1 << 24) * 16))
        ready = t - rng.random() * 1e-3
        events.append(TaskStep(tid, ready, t, t + rng.random() * 1e-4, i % 11 == 10))
        if i % SAMPLE_EVERY == 0:
            percents = tuple(round(rng.uniform(0, 100), 1) for _ in range(CORES))
            placements = (
                Placement("loop", 4242, rng.randrange(CORES), round(rng.uniform(0, 100), 1),
                          "MainThread"),
                Placement("probe", 4250, rng.randrange(CORES), round(rng.uniform(0, 5), 1),
                          "cpviz-sampler"),
                Placement("process", 5001, rng.randrange(CORES), round(rng.uniform(0, 100), 1),
                          "worker 1"),
            )
            events.append(CoreSample(t, percents, placements, rng.randrange(5000)))
            events.append(LoopLag(t, rng.random() * 1e-3))
        if i % METRIC_EVERY == 0:
            events.append(Metric(t, run_id, "queue_depth", float(rng.randrange(100))))
        if i % PROGRESS_EVERY == 0:
            events.append(RunProgress(t, run_id, i % run_len, run_len))
        if i % INCIDENT_EVERY == INCIDENT_EVERY // 2:
            incident += 1
            stack = frames(STACK_DEPTH)
            events.append(IncidentStart(t, incident, t - 0.1, stack[-1], "time.sleep", stack,
                                        tid))
            events.append(IncidentEnd(t + 0.5, incident, 0.6, stack[-2], "time.sleep", 50))
    events.append(RunEnd(t, run_id, result(run_id)))
    return events


# -- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, after a full collection so no arm inherits another's garbage."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# -- today's codec ------------------------------------------------------------------------------


def today_encode(events: Sequence[Event]) -> bytes:
    """What the recorder's two stages produce, as the bytes the writer writes."""
    return encode_lines(events).encode("utf-8")


def today_decode(data: bytes) -> list[Event]:
    """What the reader does per line, minus the file and line-length bookkeeping."""
    loads = json.loads
    return [decode_event(loads(line)) for line in data.splitlines()]


# -- msgspec: Structs mirroring the dataclasses --------------------------------------------------


def _getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    return operator.attrgetter(*names)


class Mirror:
    """Frozen Structs built from the event dataclasses, and converters both ways."""

    def __init__(self, ms: Any) -> None:
        self.ms = ms
        self.structs: dict[type, Any] = {}
        #: Converter by *source* type: a dataclass goes to its Struct, a Struct to its dataclass.
        self.convert: dict[type, Callable[[Any], Any]] = {}
        self.event_structs = [self._struct(cls, tagged=True) for cls in typing.get_args(Event)]
        self.union: Any = functools.reduce(operator.or_, self.event_structs)

    def _hint(self, hint: Any) -> Any:
        """The Struct-side type for a dataclass-side type hint."""
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return self._struct(hint, tagged=False)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (types.UnionType, typing.Union):
            return functools.reduce(operator.or_, [self._hint(a) for a in args])
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple[self._hint(args[0]), ...]  # type: ignore[misc]
            return tuple[tuple(self._hint(a) for a in args)]  # type: ignore[misc]
        return hint

    def _field_converter(self, hint: Any) -> Callable[[Any], Any] | None:
        """How to convert a field's value either way, or None when it is kept as it is."""
        convert = self.convert
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return lambda v: convert[type(v)](v)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (types.UnionType, typing.Union):
            if any(self._field_converter(a) is not None for a in args):
                return lambda v: convert[type(v)](v) if type(v) in convert else v
            return None
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = self._field_converter(args[0])
            if item is not None:
                return lambda v: tuple(map(item, v))
        return None

    def _struct(self, cls: type, tagged: bool) -> Any:
        if cls in self.structs:
            return self.structs[cls]
        hints = typing.get_type_hints(cls)
        spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for f in dataclasses.fields(cls):
            kind = self._hint(hints[f.name])
            if f.default is not dataclasses.MISSING:
                spec.append((f.name, kind, f.default))
            else:
                spec.append((f.name, kind))
        options: dict[str, Any] = {"frozen": True, "forbid_unknown_fields": True}
        if tagged:
            options.update(tag=True, tag_field="type")
        struct = self.ms.defstruct(cls.__name__, spec, module=__name__, **options)
        self.structs[cls] = struct
        names = [f.name for f in dataclasses.fields(cls)]
        get = _getter(names)
        fields = [self._field_converter(hints[n]) for n in names]
        if all(c is None for c in fields):
            self.convert[cls] = lambda ev: struct(*get(ev))
            self.convert[struct] = lambda s: cls(*get(s))
        else:
            pairs = list(zip(fields, range(len(names)), strict=True))

            def converted(obj: Any) -> list[Any]:
                values = get(obj)
                return [values[i] if c is None else c(values[i]) for c, i in pairs]

            self.convert[cls] = lambda ev: struct(*converted(ev))
            self.convert[struct] = lambda s: cls(*converted(s))
        return struct

    def to_structs(self, events: Sequence[Event]) -> list[Any]:
        convert = self.convert
        return [convert[type(ev)](ev) for ev in events]

    def to_events(self, structs: Sequence[Any]) -> list[Event]:
        convert = self.convert
        return [convert[type(s)](s) for s in structs]


class MsgspecArms:
    """Every msgspec arm's encode and decode, over one Mirror."""

    def __init__(self, ms: Any, mirror: Mirror) -> None:
        self.mirror = mirror
        self.json_enc = ms.json.Encoder()
        self.json_dec = ms.json.Decoder(mirror.union)
        self.pack_enc = ms.msgpack.Encoder()
        self.pack_dec = ms.msgpack.Decoder(list[mirror.union])  # type: ignore[name-defined]
        # Dataclasses as they are: one decoder per type, a tag peeked first.
        tag = ms.defstruct("Tag", [("type", str)])
        self.tag_dec = ms.json.Decoder(tag)
        self.dc_decs = {cls.__name__: ms.json.Decoder(cls) for cls in typing.get_args(Event)}
        self.dc_prefix = {cls: b'{"type":"%s",' % cls.__name__.encode()
                          for cls in typing.get_args(Event)}

    def json_encode(self, structs: Sequence[Any]) -> bytes:
        out: bytes = self.json_enc.encode_lines(structs)
        return out

    def json_decode(self, data: bytes) -> list[Any]:
        out: list[Any] = self.json_dec.decode_lines(data)
        return out

    def msgpack_encode(self, structs: Sequence[Any]) -> bytes:
        out: bytes = self.pack_enc.encode(structs)
        return out

    def msgpack_decode(self, data: bytes) -> list[Any]:
        out: list[Any] = self.pack_dec.decode(data)
        return out

    def dc_encode(self, events: Sequence[Event]) -> bytes:
        enc, prefix = self.json_enc.encode, self.dc_prefix
        return b"".join([prefix[type(ev)] + enc(ev)[1:] + b"\n" for ev in events])

    def dc_decode(self, data: bytes) -> list[Event]:
        peek, decs = self.tag_dec.decode, self.dc_decs
        return [decs[peek(line).type].decode(line) for line in data.splitlines()]


def dataclass_checks(ms: Any) -> dict[str, str]:
    """What msgspec does with cpviz's dataclasses as they are, in one line each."""
    out: dict[str, str] = {}
    step = TaskStep(1, 0.5, 0.75, 1.0)
    try:
        back = ms.json.decode(ms.json.encode(step), type=TaskStep)
        out["single dataclass"] = "round-trips" if back == step else f"differs: {back!r}"
    except Exception as exc:
        out["single dataclass"] = f"fails: {exc}"
    try:
        ms.json.Decoder(TaskStep | TaskSpawn)
        out["union of dataclasses"] = "accepted"
    except TypeError as exc:
        out["union of dataclasses"] = f"refused: {str(exc).split(' - ')[0]}"
    try:
        ms.json.decode(b'{"task_id":1,"ready":0.5,"start":0.75,"end":1.0,"tpyo":1}',
                       type=TaskStep)
        out["unknown field, dataclass"] = "silently ignored (no forbid_unknown_fields)"
    except ms.ValidationError as exc:
        out["unknown field, dataclass"] = f"refused: {exc}"
    start = RunStart(1.0, 1, "w", "m", (("shape", (2, 3)),))
    again = ms.json.decode(ms.json.encode(start), type=RunStart)
    out["tuple inside Any"] = (
        "kept" if again == start else f"comes back as {type(again.params[0][1]).__name__}"
    )
    out["IncidentStart (nested frames)"] = (
        "round-trips"
        if ms.json.decode(ms.json.encode(_incident()), type=IncidentStart) == _incident()
        else "differs"
    )
    return out


def _incident() -> IncidentStart:
    frame = Frame("/p/a.py", 3, "f", "time.sleep(1)")
    return IncidentStart(1.0, 1, 0.5, frame, "time.sleep", (frame, frame), 7)


def error_messages(arms: MsgspecArms | None) -> list[tuple[str, str, str]]:
    """(case, today's message, msgspec's message) for a few broken lines."""
    cases = {
        "wrong type": b'{"type":"TaskStep","task_id":1,"ready":0.5,"start":"x","end":1.0}',
        "missing field": b'{"type":"TaskStep","task_id":1,"ready":0.5,"end":1.0}',
        "unknown field": b'{"type":"TaskStep","task_id":1,"ready":0.5,"start":0.6,"end":1.0,'
                         b'"tpyo":1}',
        "nested": b'{"type":"IncidentStart","t":1.0,"incident_id":1,"since":0.5,"culprit":null,'
                  b'"blocking_call":null,"stack":[{"file":"a.py","line":"3","function":"f",'
                  b'"code":""}]}',
        "unknown type": b'{"type":"TaskStpe","task_id":1}',
    }
    rows = []
    for case, line in cases.items():
        try:
            decode_event(json.loads(line))
            today = "accepted"
        except ValueError as exc:
            today = str(exc)
        theirs = "-"
        if arms is not None:
            try:
                arms.json_dec.decode(line)
                theirs = "accepted"
            except Exception as exc:
                theirs = str(exc)
        rows.append((case, today, theirs))
    return rows


# -- the run ------------------------------------------------------------------------------------


def gz_size(data: bytes) -> int:
    """Bytes after the recorder's own compression (gzip level 1)."""
    return len(gzip.compress(data, compresslevel=1, mtime=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="timed rounds per arm (min 5)")
    parser.add_argument("--quick", action="store_true", help="a quarter of the events, 5 rounds")
    args = parser.parse_args()
    runs = 5 if args.quick else max(5, args.runs)
    events = make_events(STEPS // 4 if args.quick else STEPS)
    n = len(events)
    err = sys.stderr

    today_bytes = today_encode(events)
    if today_decode(today_bytes) != events:
        sys.exit("FAIL: today's codec does not round-trip the mix")

    arms: MsgspecArms | None = None
    structs: list[Any] = []
    if msgspec is None:
        print("msgspec is not installed: timing today's codec only "
              "(pip install msgspec in a scratch venv to compare)", file=err)
    else:
        mirror = Mirror(msgspec)
        arms = MsgspecArms(msgspec, mirror)
        structs = mirror.to_structs(events)
        if mirror.to_events(structs) != events:
            sys.exit("FAIL: the Struct mirror does not convert back to the same events")

    # Each arm: name -> (encode thunk, decode thunk). Decoders get their own arm's bytes.
    encoded: dict[str, bytes] = {"today": today_bytes}
    arms_run: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "today json-lines": (lambda: today_encode(events),
                             lambda: today_decode(encoded["today"])),
    }
    extra_timers: dict[str, Callable[[], Any]] = {
        "today pack() only": lambda: pack(events),
        "build TaskSteps as dataclasses": lambda: [TaskStep(i, 0.5, 0.75, 1.0)
                                                   for i in range(STEPS)],
    }
    if arms is not None:
        a, mirror, step_struct = arms, arms.mirror, arms.mirror.structs[TaskStep]
        encoded["json"] = a.json_encode(structs)
        encoded["msgpack"] = a.msgpack_encode(structs)
        encoded["dc"] = a.dc_encode(events)
        checks = [
            (a.json_decode(encoded["json"]) == structs, "msgspec json native"),
            (a.msgpack_decode(encoded["msgpack"]) == structs, "msgspec msgpack native"),
            (a.dc_decode(encoded["dc"]) == events, "msgspec on dataclasses"),
        ]
        for ok, what in checks:
            if not ok:
                sys.exit(f"FAIL: {what} does not round-trip the mix")
        arms_run.update({
            "msgspec json-lines, Structs": (lambda: a.json_encode(structs),
                                            lambda: a.json_decode(encoded["json"])),
            "msgspec json-lines, converted": (
                lambda: a.json_encode(mirror.to_structs(events)),
                lambda: mirror.to_events(a.json_decode(encoded["json"]))),
            "msgspec msgpack, Structs": (lambda: a.msgpack_encode(structs),
                                         lambda: a.msgpack_decode(encoded["msgpack"])),
            "msgspec msgpack, converted": (
                lambda: a.msgpack_encode(mirror.to_structs(events)),
                lambda: mirror.to_events(a.msgpack_decode(encoded["msgpack"]))),
            "msgspec json-lines, on dataclasses": (lambda: a.dc_encode(events),
                                                   lambda: a.dc_decode(encoded["dc"])),
        })
        extra_timers["build TaskSteps as Structs"] = lambda: [
            step_struct(i, 0.5, 0.75, 1.0) for i in range(STEPS)
        ]

    # Warm up once, then round robin.
    for enc, dec in arms_run.values():
        enc()
        dec()
    enc_t: dict[str, list[float]] = {k: [] for k in arms_run}
    dec_t: dict[str, list[float]] = {k: [] for k in arms_run}
    extra_t: dict[str, list[float]] = {k: [] for k in extra_timers}
    started = time.perf_counter()
    for _ in range(runs):
        for name, (enc, dec) in arms_run.items():
            enc_t[name].append(timed(enc)[0])
            dec_t[name].append(timed(dec)[0])
        for name, fn in extra_timers.items():
            extra_t[name].append(timed(fn)[0])
    elapsed = time.perf_counter() - started

    enc_med = {k: statistics.median(v) for k, v in enc_t.items()}
    dec_med = {k: statistics.median(v) for k, v in dec_t.items()}
    extra_med = {k: statistics.median(v) for k, v in extra_t.items()}
    size_key = {"today json-lines": "today", "msgspec json-lines, Structs": "json",
                "msgspec json-lines, converted": "json", "msgspec msgpack, Structs": "msgpack",
                "msgspec msgpack, converted": "msgpack",
                "msgspec json-lines, on dataclasses": "dc"}
    sizes = {k: (len(v), gz_size(v)) for k, v in encoded.items()}

    # -- the table ---------------------------------------------------------------------------
    steps_n = sum(type(e) is TaskStep for e in events)
    spawns_n = sum(type(e) is TaskSpawn for e in events)
    print(f"\n{n:,} events ({steps_n:,} steps, {spawns_n:,} spawns, {n - steps_n - spawns_n:,} "
          f"others); median of {runs} rounds; Python {platform.python_version()}"
          + (f", msgspec {msgspec.__version__}" if msgspec is not None else ""), file=err)
    print(f"{'arm':36} {'encode ms':>10} {'µs/ev':>6} {'decode ms':>10} {'µs/ev':>6} "
          f"{'MB':>6} {'gz-1 MB':>8}", file=err)
    base_enc, base_dec = enc_med["today json-lines"], dec_med["today json-lines"]
    for name in arms_run:
        raw, gz = sizes[size_key[name]]
        print(f"{name:36} {enc_med[name] * 1e3:10.1f} {enc_med[name] / n * 1e6:6.2f} "
              f"{dec_med[name] * 1e3:10.1f} {dec_med[name] / n * 1e6:6.2f} "
              f"{raw / 1e6:6.2f} {gz / 1e6:8.2f}   "
              f"(enc {base_enc / enc_med[name]:.1f}x, dec {base_dec / dec_med[name]:.1f}x)",
              file=err)
    for name, sec in extra_med.items():
        count = n if name.startswith("today") else STEPS
        print(f"{name:36} {sec * 1e3:10.1f} {sec / count * 1e6:6.2f}", file=err)

    if arms is not None:
        same = today_bytes == encoded["json"]
        if same:
            lines_note = "byte-identical to today's"
        else:
            mine, other = today_bytes.splitlines(), encoded["json"].splitlines()
            pairs = [(x, y) for x, y in zip(mine, other, strict=False) if x != y]
            equal = all(json.loads(x) == json.loads(y) for x, y in pairs)
            lines_note = (
                f"{len(pairs):,} of {len(mine):,} lines differ from today's, "
                + ("all in spelling only (same values: msgspec writes 0.000046 for 4.6e-05)"
                   if equal else "some in value")
            )
        print(f"\nmsgspec JSON Lines vs today's file: {lines_note}", file=err)
        try:
            arms.json_decode(today_bytes)
            print("msgspec decodes today's file: yes", file=err)
        except Exception as exc:
            print(f"msgspec decodes today's file: no ({exc})", file=err)
        try:
            today_decode(encoded["json"])
            print("today's reader decodes msgspec's file: yes", file=err)
        except ValueError as exc:
            print(f"today's reader decodes msgspec's file: no ({exc})", file=err)
        print("\nmsgspec on the dataclasses as they are:", file=err)
        for what, verdict in dataclass_checks(msgspec).items():
            print(f"  {what}: {verdict}", file=err)
    print("\nerror messages (today | msgspec):", file=err)
    for case, today, theirs in error_messages(arms):
        print(f"  {case}: {today}\n  {'':{len(case)}}  {theirs}", file=err)
    print(f"\ntimed part took {elapsed:.1f} s", file=err)

    def us(sec: float) -> float:
        return round(sec / n * 1e6, 3)

    result: dict[str, object] = {
        "metric": "codec_decode_speedup_msgspec",
        "value": None,
        "unit": "x",
        "target": TARGET,
        "better": "higher",
        "events": n,
        "runs": runs,
        "today_encode_us_per_event": us(base_enc),
        "today_decode_us_per_event": us(base_dec),
        "today_pack_us_per_event": us(extra_med["today pack() only"]),
        "today_mb": round(sizes["today"][0] / 1e6, 3),
        "today_gz_mb": round(sizes["today"][1] / 1e6, 3),
        "dataclass_build_us_per_step": round(
            extra_med["build TaskSteps as dataclasses"] / STEPS * 1e6, 3),
        "python": platform.python_version(),
    }
    if arms is not None:
        j, jc = "msgspec json-lines, Structs", "msgspec json-lines, converted"
        p, pc = "msgspec msgpack, Structs", "msgspec msgpack, converted"
        d = "msgspec json-lines, on dataclasses"
        result.update({
            "value": round(base_dec / dec_med[j], 2),
            "msgspec": msgspec.__version__,
            "decode_speedup_json_converted": round(base_dec / dec_med[jc], 2),
            "decode_speedup_msgpack": round(base_dec / dec_med[p], 2),
            "decode_speedup_msgpack_converted": round(base_dec / dec_med[pc], 2),
            "decode_speedup_on_dataclasses": round(base_dec / dec_med[d], 2),
            "encode_speedup_json": round(base_enc / enc_med[j], 2),
            "encode_speedup_json_converted": round(base_enc / enc_med[jc], 2),
            "encode_speedup_msgpack": round(base_enc / enc_med[p], 2),
            "msgspec_json_encode_us_per_event": us(enc_med[j]),
            "msgspec_json_decode_us_per_event": us(dec_med[j]),
            "msgspec_msgpack_encode_us_per_event": us(enc_med[p]),
            "msgspec_msgpack_decode_us_per_event": us(dec_med[p]),
            "msgspec_json_mb": round(sizes["json"][0] / 1e6, 3),
            "msgspec_msgpack_mb": round(sizes["msgpack"][0] / 1e6, 3),
            "msgspec_msgpack_gz_mb": round(sizes["msgpack"][1] / 1e6, 3),
            "struct_build_us_per_step": round(
                extra_med["build TaskSteps as Structs"] / STEPS * 1e6, 3),
        })
    else:
        result["msgspec"] = None
        result["note"] = "msgspec not installed: today's codec only"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
