"""Decks: the scenes of a talk, read from TOML (``tomllib``) and checked before anything runs.

A speaker finds a typo in a deck on stage only if nothing checks it first, so every scene is
validated up front, including its workload's mode and parameters (with the same
:meth:`Workload.resolve` that ``cpviz run`` uses). Each mistake is one line naming the file, the
scene and the key, and saying what would be accepted.

This module must not import Textual: ``cpviz talk --check`` and the tests use it without a screen.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

from cpviz.engine.errors import CpvizError
from cpviz.workloads.registry import Workload, WorkloadError, catalogue

#: Views a scene may show, in the order the screen stacks them by default.
VIEWS: tuple[str, ...] = ("cores", "runs", "measures", "timeline", "alarm")

#: Timeline spans a scene may ask for. A copy of ``cpviz.app.WINDOWS`` (the zoom steps), kept
#: here so that checking a deck needs no Textual; tests/test_deck.py checks the two agree.
WINDOWS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)

#: Keys a ``[[scene]]`` table may hold, in the order messages list them.
SCENE_KEYS: tuple[str, ...] = (
    "title", "caption", "notes", "workload", "mode", "params", "views", "sizes", "dilation",
    "window_s",
)
#: Keys at the top of a deck file.
DECK_KEYS: tuple[str, ...] = ("title", "defaults", "scene")

MAX_SCENES = 100
#: A title is drawn in big text across the screen, so it has to stay short.
TITLE_MAX = 60
#: Captions must be readable from the back row: two lines, each short enough for large text.
CAPTION_LINES = 2
CAPTION_WIDTH = 90
DILATION_RANGE = (1.0, 20.0)
SIZE_RANGE = (1, 10)
#: Far larger than any deck; stops ``cpviz talk /dev/zero`` from reading forever.
MAX_BYTES = 1 << 20


class DeckError(CpvizError, ValueError):
    """A mistake in a deck. The message names the file, the scene and the key that is wrong."""


@dataclass(frozen=True)
class Scene:
    """One step of a talk."""

    #: Shown large at the top of the screen.
    title: str
    #: One or two lines under the title, in words the back row can read.
    caption: str = ""
    #: For the speaker only (the notes view, ``n``).
    notes: str = ""
    #: Workload key to run when the scene starts, or None for a title-only scene.
    workload: str | None = None
    #: Its mode (None: the workload's first). A parsed deck always holds the resolved mode.
    mode: str | None = None
    #: Its parameters, already checked against the workload's ranges and parsed.
    params: dict[str, Any] = field(default_factory=dict)
    #: Views shown, top to bottom; a title-only scene may show none.
    views: tuple[str, ...] = VIEWS
    #: Relative heights of the views shown (``fr`` units); views not named get 1.
    sizes: dict[str, int] = field(default_factory=dict)
    #: Slow motion: display time runs this many times slower than real time (1 = real time).
    dilation: float = 1.0
    #: Seconds across the timeline.
    window_s: float = 5.0


@dataclass(frozen=True)
class Deck:
    title: str
    scenes: tuple[Scene, ...]
    #: Where it came from ("built-in" or a path), for messages.
    source: str = "built-in"


# --- reading -------------------------------------------------------------------------------------


#: How a line that ends a sentence or a point ends; any other line break is a wrap.
_ENDS = (".", "!", "?", ":")


def reflow(notes: str) -> str:
    """Notes as the speaker means them: one line per point, each wrapped where it is shown.

    A deck's notes are typed wrapped at about 100 columns. Kept as they are, every line wider
    than the notes box broke again mid-phrase and left a stub on its own line; so a break
    inside a sentence becomes a space, and the box wraps the points at word boundaries.
    A line that ends a sentence, and a blank line, stay.
    """
    out: list[str] = []
    joining = False
    for raw in notes.strip().split("\n"):
        line = raw.strip()
        if not line:
            out.append("")
            joining = False
            continue
        if joining and out:
            out[-1] += " " + line
        else:
            out.append(line)
        joining = not line.endswith(_ENDS)
    return "\n".join(out)


def load_deck(path: str | Path) -> Deck:
    """Read and check the deck at ``path``; any problem with the file itself is one DeckError."""
    source = str(path)
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DeckError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise DeckError(f"{source}: is a directory, not a deck file") from None
    except OSError as e:
        raise DeckError(f"{source}: cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise DeckError(f"{source}: larger than {MAX_BYTES // 1024} KiB; not a deck file")
    try:
        # utf-8-sig: a byte-order mark left by some editors is not the speaker's mistake.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DeckError(
            f"{source}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start});"
            " a deck is a TOML text file"
        ) from None
    return parse_deck(text, source)


def builtin_deck() -> Deck:
    """The deck ``cpviz talk`` runs with no file: it ships inside the package."""
    text = resources.files("cpviz.talk").joinpath("builtin.toml").read_text(encoding="utf-8")
    return parse_deck(text, "built-in")


_TOML_WHERE = re.compile(r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|"
                         r"end of document)\)$", re.DOTALL)


def parse_deck(text: str, source: str) -> Deck:
    """Check a deck's TOML text; ``source`` names it in messages and in ``Deck.source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeckError(_toml_message(str(e), text, source)) from None
    top = _Place(source)
    _no_unknown_keys(data, DECK_KEYS, top)
    if "title" not in data:
        raise top.fail(None, 'missing key "title" (the talk\'s title)')
    title = _title(data["title"], top, limit=None)

    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        raise top.fail("defaults", _expected("a table ([defaults])", defaults_raw))
    in_defaults = _Place(source, "[defaults]")
    if "title" in defaults_raw:
        raise in_defaults.fail("title", "a title cannot have a default; each scene sets its own")
    for key in ("workload", "mode", "params"):
        # A default workload could never be switched off, so no scene could be a title scene.
        if key in defaults_raw:
            raise in_defaults.fail(key, "what a scene runs cannot have a default; set it per scene")
    _no_unknown_keys(defaults_raw, SCENE_KEYS[1:], in_defaults)
    for key, value in defaults_raw.items():
        _field(key, value, in_defaults)

    if "scene" not in data:
        raise top.fail(None, "no scenes; add at least one [[scene]] table")
    raw_scenes = data["scene"]
    if not isinstance(raw_scenes, list) or not all(isinstance(s, dict) for s in raw_scenes):
        raise top.fail("scene", _expected("an array of tables (write [[scene]])", raw_scenes))
    if not raw_scenes:
        raise top.fail(None, "no scenes; add at least one [[scene]] table")
    if len(raw_scenes) > MAX_SCENES:
        raise top.fail("scene", f"{len(raw_scenes)} scenes; a deck holds at most {MAX_SCENES}")
    scenes = tuple(
        _scene(raw, defaults_raw, source, number)
        for number, raw in enumerate(raw_scenes, start=1)
    )
    return Deck(title=title, scenes=scenes, source=source)


def _toml_message(error: str, text: str, source: str) -> str:
    """tomllib (3.11) puts the place at the end of its message; lead with it instead."""
    m = _TOML_WHERE.match(error)
    if m is None:
        return _one_line(f"{source}: not valid TOML ({error})")
    msg = m["msg"][:1].lower() + m["msg"][1:]
    if m["line"] is None:
        return _one_line(f"{source}: line {text.count(chr(10)) + 1}: not valid TOML "
                         f"({msg} at the end of the file)")
    return _one_line(f"{source}: line {m['line']}: not valid TOML ({msg}, column {m['col']})")


# --- one scene -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """Where a value sits, so every message starts the same way: file, scene, key."""

    source: str
    label: str = ""
    #: Keys this scene took from ``[defaults]``: a mistake there is pointed out as such.
    inherited: frozenset[str] = frozenset()

    def fail(self, key: str | None, problem: str) -> DeckError:
        parts = [self.source] + ([self.label] if self.label else [])
        if key is not None:
            parts.append(f"key {_q(key)}")
        message = ": ".join([*parts, problem])
        if key is not None and key.split(".")[0] in self.inherited:
            message += " (set in [defaults])"
        return DeckError(_one_line(message))


def _scene(raw: Mapping[str, Any], defaults: Mapping[str, Any], source: str, n: int) -> Scene:
    """Check one ``[[scene]]`` table with the defaults under it, and build its Scene."""
    place = _Place(source, f"scene {n}")
    if "title" not in raw:
        raise place.fail(None, 'missing key "title"')
    title = _title(raw["title"], place, limit=TITLE_MAX)
    inherited = frozenset(k for k in defaults if k not in raw)
    place = _Place(source, f"scene {n} ({_q(title)})", inherited)
    _no_unknown_keys(raw, SCENE_KEYS, place)
    merged = {**defaults, **raw}
    values = {key: _field(key, value, place) for key, value in merged.items() if key != "title"}

    workload: Workload | None = values.get("workload")
    for needs in ("mode", "params"):
        if needs in values and workload is None:
            raise place.fail(needs, "needs a workload; add a workload key or remove this one")
    mode: str | None = None
    params: dict[str, Any] = {}
    if workload is not None:
        mode, params = _resolve(workload, values.get("mode"), values.get("params", {}), place)

    default_views = VIEWS if workload is not None else ()
    views: tuple[str, ...] = values.get("views", default_views)
    sizes: dict[str, int] = values.get("sizes", {})
    for view in sizes:
        if view not in views:
            shown = ", ".join(views) or "none"
            raise place.fail(f"sizes.{view}", f"view {_q(view)} is not shown in this scene;"
                             f" shown: {shown}")
    return Scene(
        title=title,
        caption=values.get("caption", ""),
        notes=values.get("notes", ""),
        workload=workload.key if workload is not None else None,
        mode=mode,
        params=params,
        views=views,
        sizes=dict(sizes),
        dilation=values.get("dilation", 1.0),
        window_s=values.get("window_s", 5.0),
    )


def _resolve(
    workload: Workload, mode: str | None, raw: Mapping[str, Any], place: _Place
) -> tuple[str, dict[str, Any]]:
    """Mode and parameters through ``Workload.resolve``, one at a time so a message can name
    the parameter, then all together for the checks that span several of them."""
    try:
        mode, _ = workload.resolve(mode, {})
    except WorkloadError as e:
        raise place.fail("mode", str(e)) from None
    kinds = {p.name: p.kind for p in workload.params}
    for name, value in raw.items():
        key = f"params.{name}"
        kind = kinds.get(name)
        # Param.parse would quietly turn true into 1 and 2.5 into 2; in a deck those are typos.
        if kind in (int, float) and isinstance(value, bool):
            raise place.fail(key, f"{name} must be a number, got {_toml(value)}")
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise place.fail(key, f"{name} must be a whole number, got {_toml(value)}")
        try:
            workload.resolve(mode, {name: value})
        except WorkloadError as e:
            raise place.fail(key, str(e)) from None
    try:
        return workload.resolve(mode, raw)
    except WorkloadError as e:
        raise place.fail("params", str(e)) from None


def _field(key: str, value: Any, place: _Place) -> Any:
    """Check one scene key on its own (type and range) and return it in the form Scene holds.

    Checks that involve two keys (params against the workload, sizes against views) are left
    to :func:`_scene`, so ``[defaults]`` can be checked with this alone.
    """
    if key == "caption":
        text = _string(value, key, place).strip()
        lines = [line.strip() for line in text.split("\n")] if text else []
        if len(lines) > CAPTION_LINES:
            raise place.fail(key, f"{len(lines)} lines; a caption has at most {CAPTION_LINES}")
        for i, line in enumerate(lines, start=1):
            if len(line) > CAPTION_WIDTH:
                raise place.fail(key, f"line {i} is {len(line)} characters; at most"
                                 f" {CAPTION_WIDTH} fit in large text")
        return "\n".join(lines)
    if key == "notes":
        return reflow(_string(value, key, place))
    if key == "workload":
        name = _string(value, key, place)
        found = {w.key: w for w in catalogue()}
        if name not in found:
            raise place.fail(key, f"unknown workload {name!r}; choose one of: "
                             + ", ".join(found))
        return found[name]
    if key == "mode":
        return _string(value, key, place)
    if key == "params":
        if not isinstance(value, dict):
            raise place.fail(key, _expected("a table, e.g. { n = 20 }", value))
        for name, item in value.items():
            if not isinstance(item, bool | int | float | str):
                raise place.fail(f"params.{name}",
                                 _expected("a number, string or boolean", item))
        return dict(value)
    if key == "views":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise place.fail(key, _expected('an array of view names, e.g. ["cores", "alarm"]',
                                            value))
        for i, view in enumerate(value):
            if view not in VIEWS:
                raise place.fail(key, f"unknown view {_q(view)}; choose from: "
                                 + ", ".join(VIEWS))
            if view in value[:i]:
                raise place.fail(key, f"view {_q(view)} is listed twice")
        return tuple(value)
    if key == "sizes":
        if not isinstance(value, dict):
            raise place.fail(key, _expected("a table, e.g. { timeline = 3 }", value))
        low, high = SIZE_RANGE
        for view, size in value.items():
            if view not in VIEWS:
                raise place.fail(f"sizes.{view}", f"unknown view {_q(view)}; choose from: "
                                 + ", ".join(VIEWS))
            if not isinstance(size, int) or isinstance(size, bool):
                raise place.fail(f"sizes.{view}", _expected(f"an integer from {low} to {high}",
                                                            size))
            if not low <= size <= high:
                raise place.fail(f"sizes.{view}", f"must be from {low} to {high}, got {size}")
        return dict(value)
    if key == "dilation":
        number = _number(value, key, place)
        low_f, high_f = DILATION_RANGE
        if not (math.isfinite(number) and low_f <= number <= high_f):
            raise place.fail(key, f"must be from {low_f} (real time) to {high_f},"
                             f" got {_toml(value)}")
        return number
    if key == "window_s":
        number = _number(value, key, place)
        if number not in WINDOWS:
            raise place.fail(key, f"{_toml(value)} is not a timeline span; choose one of: "
                             + ", ".join(f"{w:g}" for w in WINDOWS))
        return number
    raise AssertionError(f"unchecked scene key {key!r}")  # _no_unknown_keys ran first


# --- small checks --------------------------------------------------------------------------------


def _no_unknown_keys(table: Mapping[str, Any], accepted: tuple[str, ...], place: _Place) -> None:
    for key in table:
        if key not in accepted:
            raise place.fail(None, f"unknown key {_q(key)}; accepted: {', '.join(accepted)}")


def _title(value: Any, place: _Place, limit: int | None) -> str:
    text = _string(value, "title", place).strip()
    if not text:
        raise place.fail("title", "must not be empty")
    if "\n" in text:
        raise place.fail("title", "must be one line")
    if limit is not None and len(text) > limit:
        raise place.fail("title", f"{len(text)} characters; at most {limit} fit in large text")
    return text


def _string(value: Any, key: str, place: _Place) -> str:
    if not isinstance(value, str):
        raise place.fail(key, _expected("a string", value))
    return value


def _number(value: Any, key: str, place: _Place) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise place.fail(key, _expected("a number", value))
    return float(value)


def _expected(what: str, value: Any) -> str:
    return f"expected {what}, got {_kind(value)} ({_toml(value)})"


def _kind(value: Any) -> str:
    """TOML's names for a value's type, which is what the deck's author wrote."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


def _toml(value: Any) -> str:
    """A value roughly as it was spelled in the file, cut short for a one-line message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = _q(value)
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> str:
    """A parameter as ``--set`` would take it: choices read better unquoted."""
    return value if isinstance(value, str) and value.isidentifier() else _toml(value)


def _q(text: str) -> str:
    """Double-quoted with escapes, so a key or title with a newline still fits on one line."""
    return json.dumps(text, ensure_ascii=False)


def _one_line(message: str) -> str:
    return message.replace("\r", "\\r").replace("\n", "\\n")


# --- the --check report --------------------------------------------------------------------------


def check_report(deck: Deck) -> str:
    """What ``cpviz talk --check`` prints for a deck that passed: one line per scene, so the
    speaker can read the running order and spot a scene set up differently than meant."""
    width = len(str(len(deck.scenes)))
    count = f"{len(deck.scenes)} scene{'s' if len(deck.scenes) != 1 else ''}"
    lines = [f"{deck.source}: {_q(deck.title)} — {count}, no mistakes found"]
    by_key = {w.key: w for w in catalogue()}
    for n, scene in enumerate(deck.scenes, start=1):
        what = "title only"
        if scene.workload is not None:
            what = f"{scene.workload}:{scene.mode}"
            workload = by_key.get(scene.workload)
            if workload is not None:
                changed = [f"{p.name}={_plain(scene.params[p.name])}" for p in workload.params
                           if p.name in scene.params and scene.params[p.name] != p.default]
                if changed:
                    what += " " + " ".join(changed)
        if scene.dilation != 1.0:
            factor = scene.dilation
            shown = f"{factor:.1f}" if round(factor, 1) == factor else f"{factor:g}"
            what += f" ({shown}× slow motion)"
        lines.append(f"  {n:>{width}}  {scene.title} — {what}")
    return "\n".join(lines)
