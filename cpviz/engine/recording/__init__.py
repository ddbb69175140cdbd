"""Recordings: the event stream written to a JSON Lines file as it happens, and read back.

A recording is a header line (format, version, who recorded it, on what machine, which
workloads the lab offered) followed by one event per line, in the order the stream handed them
to the Model. ``.gz`` files are compressed.

One module per part, each importable on its own; this package re-exports what the rest of cpviz
uses, so callers import from ``cpviz.engine.recording`` and never from a part:

- :mod:`.codec`: any event dataclass to a JSON object and back, checked field by field;
- :mod:`.packing`: the fast two-stage encoding (pack in the recorder, format in the writer);
- :mod:`.header`: line 1 of a recording;
- :mod:`.reader`: reading a recording back, trusting nothing;
- :mod:`.recorder`: the tap on the event stream and the packing thread;
- :mod:`.writer`: the writer process that formats, compresses and flushes.
"""

from __future__ import annotations

from cpviz.engine.recording.codec import EVENT_TYPES, decode_event, encode_event
from cpviz.engine.recording.header import FORMAT, VERSION, Header
from cpviz.engine.recording.packing import Packed, encode_lines, format_packed, pack
from cpviz.engine.recording.reader import (
    MAX_LINE_BYTES,
    Recording,
    RecordingError,
    RecordingReader,
    load,
)
from cpviz.engine.recording.recorder import (
    DEFAULT_MAX_MB,
    FLUSH_S,
    MAX_PENDING_EVENTS,
    Recorder,
    RecorderStatus,
)

__all__ = [
    "DEFAULT_MAX_MB",
    "EVENT_TYPES",
    "FLUSH_S",
    "FORMAT",
    "MAX_LINE_BYTES",
    "MAX_PENDING_EVENTS",
    "VERSION",
    "Header",
    "Packed",
    "Recorder",
    "RecorderStatus",
    "Recording",
    "RecordingError",
    "RecordingReader",
    "decode_event",
    "encode_event",
    "encode_lines",
    "format_packed",
    "load",
    "pack",
]
