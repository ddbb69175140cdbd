"""The generic codec: any event dataclass to a JSON object and back, checked field by field.

Events are encoded from their dataclass fields and type hints, so an event type added to
:data:`~cpviz.engine.events.Event` is recorded and read back without touching this package.
Decoding trusts nothing: every field is checked against its declared type, and anything wrong is
a :class:`_Bad` that the reader turns into a :class:`~cpviz.engine.recording.RecordingError`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from cpviz.engine.events import Event, TaskSpawn, TaskStep


class _Bad(Exception):
    """A value that does not fit its declared type; the reader adds file and line."""


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


def _fast_step(obj: dict[str, Any]) -> Event | None:
    """A task step in the exact shape the writer gives it, built without the generic walk (steps
    are most of any recording); anything else returns None and takes the checked path."""
    final = obj.get("final", False) if len(obj) == 6 else (False if len(obj) == 5 else None)
    task_id, ready, start, end = obj.get("task_id"), obj.get("ready"), obj.get("start"), \
        obj.get("end")
    if type(final) is bool and type(task_id) is int and type(ready) is float \
            and type(start) is float and type(end) is float:
        return TaskStep(task_id, ready, start, end, final)
    return None


def _fast_spawn(obj: dict[str, Any]) -> Event | None:
    """A task spawn in the writer's exact shape (see :func:`_fast_step`)."""
    if len(obj) != 6:
        return None
    t, task_id, name, run_id, parent_id = obj.get("t"), obj.get("task_id"), obj.get("name"), \
        obj.get("run_id"), obj.get("parent_id")
    if type(t) is float and type(task_id) is int and type(name) is str \
            and type(run_id) is int and type(parent_id) is int:
        return TaskSpawn(t, task_id, name, run_id, parent_id)
    return None


_FAST: dict[str, Callable[[dict[str, Any]], Event | None]] = {
    "TaskStep": _fast_step,
    "TaskSpawn": _fast_spawn,
}


def _decode_event(obj: Any) -> Event:
    if type(obj) is dict:
        name = obj.get("type")
        fast = _FAST.get(name) if type(name) is str else None
        if fast is not None:
            quick = fast(obj)
            if quick is not None:
                return quick
    if not isinstance(obj, dict):
        raise _Bad(f"expected an event object, got {_describe(obj)}")
    name = obj.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _Bad(f"unknown event type {_describe(name)}")
    event: Event = _codec(cls).decode(obj, cls.__name__)
    return event


# Make sure every event type is known (and fail at import if one cannot be recorded).
for _cls in EVENT_TYPES.values():
    _codec(_cls)
