"""Encoding in two stages: cheap packing on the recorder's side, formatting in the writer.

The recorder shares the GIL with the loop it watches, and turning floats into text is the dear
part of writing JSON (``repr`` of a float costs more than a whole task step). So the recording
process only *packs* events: events whose fields are all scalars (task steps and spawns are
nearly all of any recording) become tuples of their field values, grouped by type, which C code
does; the writer process *formats* those into JSON lines on another core.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import operator
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

from cpviz.engine.events import Event
from cpviz.engine.recording.codec import EVENT_TYPES, _codec, _json_default, encode_event

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
