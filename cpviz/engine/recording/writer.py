"""The writer process: packed batches in on stdin, a recording file out, status on stdout.

It runs apart from the watched program so that formatting JSON and compressing cost that program
nothing; :class:`~cpviz.engine.recording.Recorder` starts it and feeds it.
"""

from __future__ import annotations

import gzip
import json
import pickle
import signal
import struct
import sys
import zlib
from io import BytesIO
from typing import Any, BinaryIO

from cpviz.engine.recording.packing import format_packed

#: The frame on the pipe into the writer: each pickled message is preceded by its length.
_LEN = struct.Struct("<I")


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
