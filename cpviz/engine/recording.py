"""Recordings: the event stream written to a JSON Lines file as it happens, and read back.

A recording is a header line (format, version, who recorded it, on what machine, which
workloads the lab offered) followed by one event per line, in the order the stream handed them
to the Model. ``.gz`` files are compressed. Events are encoded *generically* from their dataclass
fields and type hints, so an event type added to :data:`~cpviz.engine.events.Event` is recorded
and read back without touching this module.

Reading trusts nothing: lines are parsed with ``json.loads`` only (nothing is unpickled or
evaluated), each line is capped in length before it is parsed, and every field is checked
against its declared type. Anything wrong becomes a :class:`RecordingError` naming the file, the
line and the problem.

Writing costs the watched program as little as it can: :meth:`Recorder.tap` only appends the
drained batch to a queue; a thread packs the queue into plain tuples a few times a second, and a
writer process turns those into JSON, compresses and flushes them on another core.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gzip
import itertools
import json
import operator
import os
import pickle
import platform
import re
import signal
import struct
import subprocess
import sys
import threading
import types
import typing
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BufferedReader, BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Literal

from cpviz import __version__
from cpviz.engine.contract import ParamInfo, WorkloadInfo
from cpviz.engine.events import Event, StreamGap
from cpviz.engine.source import event_time

FORMAT = "cpviz-recording"
VERSION = 1
#: Longest line the reader accepts; longer ones are refused before they are read whole.
MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_MB = 200.0
#: How often the recorder hands its queue to the writer, which flushes after each hand-over:
#: about what a crash can lose.
FLUSH_S = 0.2
_GZIP_MAGIC = b"\x1f\x8b"


class RecordingError(Exception):
    """A recording that cannot be read or written; ``str()`` is the whole one-line story."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class _Bad(Exception):
    """A value that does not fit its declared type; the reader adds file and line."""


# -- the generic codec --------------------------------------------------------------------------

_Encode = Callable[[Any], Any]
_Decode = Callable[[Any, str], Any]


def _any_encode(value: Any) -> Any:
    """A free-form value (a run's params and extra figures) as JSON, tuples kept apart from
    lists so they decode to the type they were."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, tuple):
        return {"$tuple": [_any_encode(v) for v in value]}
    if isinstance(value, list):
        return [_any_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _any_encode(v) for k, v in value.items()}
    return _json_default(value)


def _json_default(value: Any) -> Any:
    """What JSON cannot hold as it is: numbers of other kinds (numpy's) as numbers, anything
    else (a path, an enum) as its text, which is what a person would read."""
    if hasattr(value, "__index__"):
        return int(value.__index__())
    if hasattr(value, "__float__"):
        return float(value)
    return str(value)


def _any_decode(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_any_decode(v, where) for v in value]
    if isinstance(value, dict):
        if value.keys() == {"$tuple"}:
            items = value["$tuple"]
            if not isinstance(items, list):
                raise _Bad(f"{where}: a $tuple must hold a list")
            return tuple(_any_decode(v, where) for v in items)
        return {k: _any_decode(v, where) for k, v in value.items()}
    return value


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _scalar(kind: type, name: str) -> tuple[_Encode, _Decode]:
    def decode(value: Any, where: str) -> Any:
        if kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif isinstance(value, kind):
            return value
        raise _Bad(f"{where} should be {name}, got {_describe(value)}")

    return (lambda v: v), decode


class _Codec:
    """Encoder and decoder for one dataclass, built from its type hints."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        self.names = tuple(f.name for f in fields)
        self.required = frozenset(
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        self.known = frozenset(self.names)
        pairs = [_codec_for(hints[f.name]) for f in fields]
        self.encoders = tuple(p[0] for p in pairs)
        self.decoders = dict(zip(self.names, (p[1] for p in pairs), strict=True))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {
            name: enc(getattr(obj, name))
            for name, enc in zip(self.names, self.encoders, strict=True)
        }

    def decode(self, obj: Any, where: str) -> Any:
        if not isinstance(obj, dict):
            raise _Bad(f"{where} should be an object, got {_describe(obj)}")
        missing = self.required - obj.keys()
        if missing:
            raise _Bad(f"{where} is missing field {sorted(missing)[0]!r}")
        kwargs: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "type" and where == self.name:
                continue
            decode = self.decoders.get(key)
            if decode is None:
                raise _Bad(f"{where} has unknown field {key!r}")
            kwargs[key] = decode(value, f"{where}.{key}")
        return self.cls(**kwargs)


_CODECS: dict[type, _Codec] = {}


def _codec(cls: type) -> _Codec:
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = _Codec(cls)
    return codec


def _codec_for(hint: Any) -> tuple[_Encode, _Decode]:
    """How to write and check a value of type ``hint``."""
    if hint is Any:
        return _any_encode, _any_decode
    if hint is float:
        return _scalar(float, "a number")
    if hint is bool:
        return _scalar(bool, "true or false")
    if hint is int:
        return _scalar(int, "an integer")
    if hint is str:
        return _scalar(str, "a string")
    if hint is type(None):
        return _scalar(type(None), "null")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        codec = _codec(hint)
        return codec.encode, codec.decode
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        allowed = args

        def literal(value: Any, where: str) -> Any:
            if isinstance(value, (str, int)) and value in allowed:
                return value
            choices = ", ".join(json.dumps(a) for a in allowed)
            raise _Bad(f"{where} should be one of {choices}, got {_describe(value)}")

        return (lambda v: v), literal
    if origin in (types.UnionType, typing.Union):
        members = [_codec_for(a) for a in args]
        nullable = type(None) in args
        others = [m for a, m in zip(args, members, strict=True) if a is not type(None)]

        def enc_union(value: Any) -> Any:
            if value is None and nullable:
                return None
            return others[0][0](value) if len(others) == 1 else _any_encode(value)

        def dec_union(value: Any, where: str) -> Any:
            if value is None and nullable:
                return None
            problem: _Bad | None = None
            for _, dec in others:
                try:
                    return dec(value, where)
                except _Bad as exc:
                    problem = exc
            assert problem is not None
            raise problem

        return enc_union, dec_union
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            enc_item, dec_item = _codec_for(args[0])

            def enc_seq(value: Any) -> Any:
                return [enc_item(v) for v in value]

            def dec_seq(value: Any, where: str) -> Any:
                if not isinstance(value, list):
                    raise _Bad(f"{where} should be a list, got {_describe(value)}")
                return tuple(dec_item(v, f"{where}[{i}]") for i, v in enumerate(value))

            return enc_seq, dec_seq
        items = [_codec_for(a) for a in args]

        def enc_fixed(value: Any) -> Any:
            return [enc(v) for (enc, _), v in zip(items, value, strict=True)]

        def dec_fixed(value: Any, where: str) -> Any:
            if not isinstance(value, list) or len(value) != len(items):
                raise _Bad(f"{where} should be a list of {len(items)}, got {_describe(value)}")
            pairs = zip(items, value, strict=True)
            return tuple(dec(v, f"{where}[{i}]") for i, ((_, dec), v) in enumerate(pairs))

        return enc_fixed, dec_fixed
    if origin in (list, dict):
        item_hint = args[-1] if args else Any
        enc_item, dec_item = _codec_for(item_hint)
        if origin is list:

            def enc_list(value: Any) -> Any:
                return [enc_item(v) for v in value]

            def dec_list(value: Any, where: str) -> Any:
                if not isinstance(value, list):
                    raise _Bad(f"{where} should be a list, got {_describe(value)}")
                return [dec_item(v, f"{where}[{i}]") for i, v in enumerate(value)]

            return enc_list, dec_list

        def enc_dict(value: Any) -> Any:
            return {str(k): enc_item(v) for k, v in value.items()}

        def dec_dict(value: Any, where: str) -> Any:
            if not isinstance(value, dict):
                raise _Bad(f"{where} should be an object, got {_describe(value)}")
            return {k: dec_item(v, f"{where}.{k}") for k, v in value.items()}

        return enc_dict, dec_dict
    # A type this module does not know: kept as a free-form value rather than refused, so a new
    # event type never stops cpviz from starting (the round-trip test will say if it suffers).
    return _any_encode, _any_decode


def _event_types() -> dict[str, type]:
    out: dict[str, type] = {}
    for cls in typing.get_args(Event):
        out[cls.__name__] = cls
    return out


#: Every event type a recording may hold, by the name written in its ``type`` field.
EVENT_TYPES: dict[str, type] = _event_types()


def encode_event(event: Event) -> dict[str, Any]:
    """An event as a JSON object: ``type`` first, then every field."""
    codec = _codec(type(event))
    out: dict[str, Any] = {"type": codec.name}
    out.update(codec.encode(event))
    return out


def decode_event(obj: Any) -> Event:
    """The event a JSON object describes; raises ValueError saying what does not fit."""
    try:
        return _decode_event(obj)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def _decode_event(obj: Any) -> Event:
    if not isinstance(obj, dict):
        raise _Bad(f"expected an event object, got {_describe(obj)}")
    name = obj.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _Bad(f"unknown event type {_describe(name)}")
    event: Event = _codec(cls).decode(obj, cls.__name__)
    return event


# -- encoding in two stages ---------------------------------------------------------------------
#
# The recorder shares the GIL with the loop it watches, and turning floats into text is the
# dear part of writing JSON (``repr`` of a float costs more than a whole task step). So the
# recording process only *packs* events: events whose fields are all scalars (task steps and
# spawns are nearly all of any recording) become tuples of their field values, grouped by type,
# which C code does; the writer process *formats* those into JSON lines on another core.

#: What ``repr`` of a field can write that JSON does not allow: NaN or infinity, or the repr of
#: a number of another kind (``np.int64(5)``, ``<Kind.A: 1>``).
_NOT_JSON = re.compile(r":-?(?:nan|inf)[,}]|[(<' ]")

Packed = list[tuple[str | None, list[Any]]]
"""Events packed for formatting: ``(type name, field tuples)`` for scalar events, or
``(None, JSON lines)`` for events encoded already."""


class _Rows:
    """How to pack and format one event type whose fields are all int, float, bool or str."""

    def __init__(self, cls: type) -> None:
        codec = _codec(cls)
        hints = typing.get_type_hints(cls)
        kinds = [hints[name] for name in codec.names]
        self.keys = ("type", *codec.names)
        self.name = codec.name
        #: Pulls the field values out as a tuple, in C.
        self.get: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*codec.names)
        self.numeric = str not in kinds
        self.bools = bool in kinds
        fields = ",".join(f'"{name}":%r' for name in codec.names)
        self.template = '{"type":"%s",%s}' % (codec.name, fields)  # noqa: UP031

    def format(self, rows: list[tuple[Any, ...]]) -> list[str]:
        if self.numeric:
            template = self.template
            text = "\n".join([template % row for row in rows])
            bad = _NOT_JSON.search(text) is not None
            if self.bools and not bad:
                # Safe: these lines hold only field names and numbers.
                text = text.replace(":False", ":false").replace(":True", ":true")
            if not bad:
                return text.split("\n")
        name, keys, dumps = self.name, self.keys, json.dumps
        return [
            dumps(
                dict(zip(keys, (name, *row), strict=True)),
                separators=(",", ":"),
                default=_json_default,
            )
            for row in rows
        ]


def _rows_for(cls: type) -> _Rows | None:
    if len(dataclasses.fields(cls)) < 2:
        return None
    hints = typing.get_type_hints(cls)
    if all(hints[f.name] in (int, float, bool, str) for f in dataclasses.fields(cls)):
        return _Rows(cls)
    return None


_ROWS: dict[type, _Rows | None] = {cls: _rows_for(cls) for cls in EVENT_TYPES.values()}
_ROWS_BY_NAME: dict[str, _Rows] = {r.name: r for r in _ROWS.values() if r is not None}


def _dumps(event: Event) -> str:
    return json.dumps(encode_event(event), separators=(",", ":"), default=_json_default)


def pack(events: Sequence[Event]) -> Packed:
    """Stage one, cheap: group runs of one type, scalar events as tuples of their fields."""
    out: Packed = []
    for kind, group in itertools.groupby(events, type):
        rows = _ROWS.get(kind)
        if rows is not None:
            out.append((rows.name, list(map(rows.get, group))))
        else:
            out.append((None, [_dumps(ev) for ev in group]))
    return out


def format_packed(packed: Packed) -> list[str]:
    """Stage two, dear: the JSON lines (without newlines) of packed events, in order."""
    lines: list[str] = []
    for name, items in packed:
        if name is None:
            lines.extend(items)
        else:
            lines.extend(_ROWS_BY_NAME[name].format(items))
    return lines


def encode_lines(events: Sequence[Event]) -> str:
    """Events as JSON Lines, each line ending with a newline."""
    lines = format_packed(pack(events))
    return "".join(line + "\n" for line in lines)


# -- the header ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """Line 1 of a recording: what was recorded, by what, where and when."""

    #: cpviz version that wrote the file.
    cpviz: str
    #: ``platform.platform()`` of the recording machine.
    platform: str
    python: str
    #: Logical CPUs of the recording machine (the core lanes' count).
    cores: int
    #: Wall-clock time the recording began, ISO 8601 with its UTC offset.
    started: str
    #: Session clock reading (the events' time axis) when the recording began.
    clock_start: float
    #: The workloads the lab offered, so a replay can show the run panel as it was.
    workloads: tuple[WorkloadInfo, ...]
    #: The command line that made the recording.
    command: str = ""

    @staticmethod
    def now(
        cores: int, clock_start: float, workloads: Sequence[WorkloadInfo], command: str = ""
    ) -> Header:
        """A header for a recording starting now on this machine."""
        started = datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")
        return Header(
            cpviz=__version__,
            platform=platform.platform(),
            python=platform.python_version(),
            cores=cores,
            started=started,
            clock_start=clock_start,
            workloads=tuple(workloads),
            command=command,
        )

    def encode(self) -> dict[str, Any]:
        body = _codec(Header).encode(self)
        return {"format": FORMAT, "version": VERSION, **body}


def _decode_header(obj: Any) -> Header:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise _Bad(f"not a cpviz recording (line 1 should be a header with format {FORMAT!r})")
    version = obj.get("version")
    if version != VERSION or isinstance(version, bool):
        raise _Bad(f"unsupported version {_describe(version)}; this cpviz reads version {VERSION}")
    body = {k: v for k, v in obj.items() if k not in ("format", "version")}
    header: Header = _codec(Header).decode(body, "header")
    if header.cores < 1:
        raise _Bad(f"header.cores should be at least 1, got {header.cores}")
    return header


# Make sure the header's nested types are known (and fail at import if one cannot be recorded).
_codec(ParamInfo)
_codec(WorkloadInfo)
for _cls in EVENT_TYPES.values():
    _codec(_cls)


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """A whole recording in memory, events in file order (the order the Model saw them)."""

    path: str
    header: Header
    events: tuple[Event, ...]


class RecordingReader:
    """Streams a recording line by line; every problem is a :class:`RecordingError`.

    >>> with RecordingReader(path) as reader:  # doctest: +SKIP
    ...     for event in reader: ...
    """

    def __init__(self, path: str | Path, max_line: int = MAX_LINE_BYTES) -> None:
        self.path = str(path)
        self.max_line = max_line
        #: Line number of the last line read (the header is line 1).
        self.line = 0
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise RecordingError(path, None, f"cannot read: {exc.strerror or exc}") from None
        self._raw = raw
        try:
            magic = raw.read(2)
            raw.seek(0)
        except OSError as exc:
            raw.close()
            raise RecordingError(path, None, f"cannot read: {exc.strerror or exc}") from None
        self.compressed = magic == _GZIP_MAGIC
        self._file: gzip.GzipFile | BufferedReader = (
            gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw
        )
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._file.close()
        self._raw.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, problem: str) -> RecordingError:
        return RecordingError(self.path, self.line, problem)

    def _next_line(self) -> tuple[bytes, bool] | None:
        """The next line (without its newline) and whether it had one; None at the end."""
        try:
            data = self._file.readline(self.max_line + 1)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            self.line += 1
            raise self._fail(f"truncated or corrupt gzip data ({exc})") from None
        if not data:
            return None
        self.line += 1
        if data.endswith(b"\n"):
            return data[:-1], True
        if len(data) > self.max_line:
            raise self._fail(
                f"line is longer than {self.max_line} bytes; a cpviz recording has no such line"
            )
        return data, False

    def _parse(self, data: bytes, complete: bool) -> Any:
        if not data.strip():
            raise self._fail("empty line where an event was expected")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            if not complete:
                raise self._fail(
                    "truncated: the last line ends in the middle of an event"
                ) from None
            detail = str(exc).split(":")[0] if isinstance(exc, ValueError) else "nested too deep"
            raise self._fail(f"not valid JSON ({detail})") from None

    def _read_header(self) -> Header:
        got = self._next_line()
        if got is None:
            self.line = 1
            raise self._fail("empty file: expected a cpviz recording header")
        data, complete = got
        obj = self._parse(data, complete)
        try:
            return _decode_header(obj)
        except _Bad as exc:
            raise self._fail(str(exc)) from None

    def __iter__(self) -> Iterator[Event]:
        while True:
            got = self._next_line()
            if got is None:
                return
            obj = self._parse(*got)
            try:
                yield _decode_event(obj)
            except _Bad as exc:
                raise self._fail(str(exc)) from None


def load(path: str | Path, max_line: int = MAX_LINE_BYTES) -> Recording:
    """Read and check a whole recording."""
    with RecordingReader(path, max_line) as reader:
        events = tuple(reader)
        return Recording(reader.path, reader.header, events)


# -- writing ------------------------------------------------------------------------------------

#: Events the recorder may hold waiting for the writer before it starts dropping batches.
MAX_PENDING_EVENTS = 2_000_000
_LEN = struct.Struct("<I")


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


_CHILD = "from cpviz.engine.recording import _writer_main; _writer_main()"


class _Plain(pickle.Unpickler):
    """Unpickles lists, tuples, strings and numbers, and refuses anything else (no classes,
    no callables): the writer only ever takes packed events from its own recorder."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the recording writer refuses {module}.{name}")


def _writer_main() -> None:
    """The writer process: packed batches on stdin, a recording file out, status on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, max_bytes = sys.argv[1], int(sys.argv[2])
    source = sys.stdin.buffer
    events = written = 0
    capped = False
    message: str | None = None

    def report() -> None:
        state = {"events": events, "bytes": written, "capped": capped, "message": message}
        sys.stdout.write(json.dumps(state) + "\n")
        sys.stdout.flush()

    def receive() -> Any:
        head = source.read(_LEN.size)
        if len(head) < _LEN.size:
            return None
        payload = source.read(_LEN.unpack(head)[0])
        return _Plain(BytesIO(payload)).load()

    try:
        raw = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        message = f"recording {path} stopped: cannot write ({exc.strerror or exc})"
        report()
        while receive() is not None:
            pass
        return
    # Level 1: three times cheaper than the default for a fifth more bytes, and this process
    # shares the machine with what it records. mtime=0 keeps the bytes reproducible.
    gz = (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
        if path.endswith(".gz")
        else None
    )
    out: BinaryIO = gz if gz is not None else raw  # type: ignore[assignment]
    first = True
    try:
        while (message_in := receive()) is not None:
            if capped or message is not None:
                continue
            is_header = first
            first = False
            if is_header:
                lines = [json.dumps(message_in[0], separators=(",", ":"))]
            else:
                lines = format_packed(message_in)
            data = "".join(line + "\n" for line in lines).encode("utf-8")
            if written + len(data) > max_bytes and not is_header:
                fit = 0
                for line in lines:
                    chunk = (line + "\n").encode("utf-8")
                    if written + len(chunk) > max_bytes:
                        break
                    out.write(chunk)
                    written += len(chunk)
                    fit += 1
                events += fit
                capped = True
                message = (
                    f"recording {path} reached its size cap of {max_bytes / 1e6:g} MB; "
                    "later events were not written (raise --record-max-mb)"
                )
            else:
                out.write(data)
                written += len(data)
                events += 0 if is_header else len(lines)
            if gz is not None:
                gz.flush(zlib.Z_SYNC_FLUSH)
            raw.flush()
            report()
    except OSError as exc:
        message = f"recording {path} stopped: cannot write ({exc.strerror or exc})"
        report()
        while receive() is not None:
            pass
    finally:
        if gz is not None:
            gz.close()
        raw.close()
    report()
