"""Line 1 of a recording: the header, and the format name and version it carries."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cpviz import __version__
from cpviz.engine.contract import ParamInfo, WorkloadInfo
from cpviz.engine.recording.codec import _Bad, _codec, _describe
from cpviz.engine.recording.validate import check_header_values

FORMAT = "cpviz-recording"
VERSION = 1


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
    check_header_values(header.clock_start, header.cores, header.workloads)
    return header


# Make sure the header's nested types are known (and fail at import if one cannot be recorded).
_codec(ParamInfo)
_codec(WorkloadInfo)
