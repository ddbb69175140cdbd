"""Reading a recording back: line by line, trusting nothing.

Lines are parsed with ``json.loads`` only (nothing is unpickled or evaluated), each line is capped
in length before it is parsed, every field is checked against its declared type, and every value
against its range (:mod:`.validate`). Anything wrong becomes a :class:`RecordingError` naming the
file, the line and the problem. The reader holds one line at a time: whatever reads through it
(``--check``, a replay, an export) needs memory for what it keeps, not for the file.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

from cpviz.engine.errors import CpvizError
from cpviz.engine.events import Event
from cpviz.engine.recording.codec import _Bad, _decode_event
from cpviz.engine.recording.header import Header, _decode_header
from cpviz.engine.recording.validate import Validator

#: Longest line the reader accepts; longer ones are refused before they are read whole.
MAX_LINE_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class RecordingError(CpvizError):
    """A recording that cannot be read or written; ``str()`` is the whole one-line story."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


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
        except IsADirectoryError:
            raise RecordingError(path, None, "is a directory, not a recording") from None
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
        self.validator = Validator(self.header.clock_start, self.header.cores)

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
        except RecursionError:
            raise self._fail("nested too deep for a header") from None

    def __iter__(self) -> Iterator[Event]:
        check = self.validator.check
        while True:
            got = self._next_line()
            if got is None:
                return
            obj = self._parse(*got)
            try:
                event = _decode_event(obj)
                check(event)
            except _Bad as exc:
                raise self._fail(str(exc)) from None
            except RecursionError:
                raise self._fail("nested too deep for an event") from None
            yield event


def load(path: str | Path, max_line: int = MAX_LINE_BYTES) -> Recording:
    """Read and check a whole recording."""
    with RecordingReader(path, max_line) as reader:
        events = tuple(reader)
        return Recording(reader.path, reader.header, events)
