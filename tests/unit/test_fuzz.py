"""Fuzzing everything cpviz parses: any input gives a result or one CpvizError, never a crash.

Hypothesis writes the inputs: bytes and text, and, more to the point, real recordings, decks and
``--set`` values with one field turned into something hostile (NaN, infinity, 1e300, a negative
time, an integer past 64 bits, a string where a number goes). The number of examples is bounded
so the whole file runs in a few seconds; a failure is shrunk to the smallest input that shows it.

The recording property is stronger than "no crash": whatever the reader accepts, the replay's
Model, the core lanes' columns and the Perfetto export must handle (``--check`` promises that).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import math
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cpviz.cli import _setting, _settle, build_parser
from cpviz.engine.errors import CpvizError
from cpviz.engine.events import Event
from cpviz.engine.export import export_perfetto
from cpviz.engine.model import CoreWindow, Model
from cpviz.engine.osrows import RowInfo, Slice
from cpviz.engine.recording import RecordingReader, encode_lines, load
from cpviz.engine.recording.index import scan
from cpviz.engine.recording.os_samples import Batcher
from cpviz.engine.replay import ReplaySource
from cpviz.talk.deck import SCENE_KEYS, parse_deck
from cpviz.widgets.measures import columns
from cpviz.workloads.registry import catalogue
from tests.paths import FIXTURES, ROOT

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
FOLDER = Path(tempfile.mkdtemp(prefix="cpviz-fuzz-"))
PARAM_NAMES = sorted({p.name for w in catalogue() for p in w.params})

#: Values JSON can carry that a field should refuse or survive.
WILD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, -1.0, -1e-9, 0.0, 1e9,
                     604800.5, 2**63, -(2**63), 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
WILD = st.one_of(
    WILD_NUMBERS, st.text(max_size=20), st.booleans(), st.none(),
    st.lists(WILD_NUMBERS, max_size=5), st.dictionaries(st.text(max_size=5), st.integers(),
                                                        max_size=3),
)


def _lines(name: str) -> list[str]:
    with gzip.open(FIXTURES / name, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _os_rows_lines() -> list[str]:
    """A recording of thread and process rows (the fixtures predate them): the blocking
    fixture's header, then a few batches as the sampler makes them."""
    batches: list[Event] = []
    batcher = Batcher(batches.append, samples=5)
    tid, pid = ("thread", 11), ("process", 12)
    infos = {tid: RowInfo(tid, "worker", "thread"), pid: RowInfo(pid, "python 12", "process")}
    for i in range(20):
        slices = {tid: Slice(0.5, 0.25, 0.0, i % 2) if i % 3 else Slice(0.0, 0.0, 0.9, -1)}
        if i > 4:
            slices[pid] = Slice(1.0, 0.0, 0.0, 70)
        batcher.add(0.1 + i * 0.01, 0.11 + i * 0.01, slices, infos)
    batcher.flush()
    return [_lines("blocking.jsonl.gz")[0], *encode_lines(batches).splitlines()]


FIXTURE_LINES = {name: _lines(name) for name in ("blocking.jsonl.gz", "pipeline.jsonl.gz",
                                                 "deadlock.jsonl.gz", "amdahl.jsonl.gz")}
FIXTURE_LINES["os-rows"] = _os_rows_lines()


def _write(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(dir=FOLDER, suffix=".jsonl")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a decoded JSON line a value sits, as a path of keys and indexes."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key != "type":
                yield (*prefix, key)
                yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _put(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


@st.composite
def hostile_recordings(draw: st.DrawFn) -> bytes:
    """A real recording, cut short at random, with a few of its values made hostile."""
    lines = list(FIXTURE_LINES[draw(st.sampled_from(sorted(FIXTURE_LINES)))])
    keep = draw(st.integers(1, len(lines)))
    lines = lines[:keep]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        obj = json.loads(lines[at])
        places = list(_paths(obj))
        numbers = [p for p in places if isinstance(_get(obj, p), (int, float))]
        mostly: int = draw(st.integers(0, 4))
        if numbers and mostly:  # mostly a number: times, ids, counts
            places = numbers
        if not places:
            continue
        _put(obj, draw(st.sampled_from(places)), draw(WILD))
        lines[at] = json.dumps(obj)  # NaN and Infinity as Python writes them
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), draw(st.text(max_size=40)))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def _fold_everything(path: Path) -> None:
    """What replay, screenshot and export do with an accepted file, minus the terminal."""
    index = scan(path)
    source = ReplaySource.open(path, index=index, paused=True)
    model = Model(source.cores)
    lanes = CoreWindow(model)
    for position in (index.duration / 2, index.duration):
        source.seek(position)
        if source.take_reset():
            model.reset()
        model.apply(source.poll())
        while source.behind:
            model.apply(source.poll())
        now = source.at
        t0 = now - 5.0
        for info in model.rows()[:50]:
            model.task_states(info, t0, now, 120)
        model.band(t0, now, 120)
        model.frozen_columns(t0, now, 120, now)
        lanes.columns(t0, now, 120, now)
        for series in (s for by_name in model.metrics.values() for s in by_name.values()):
            columns(series, t0, 5.0 / 120, 120)
        rows = source.os_rows
        if rows is not None:
            for row in rows.infos()[:50]:
                rows.columns(row.key, t0, 5.0 / 120, 120)
    source.close()
    export_perfetto(path, path.with_suffix(".perfetto.json"))


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_are_a_recording_or_one_clean_error(data: bytes) -> None:
    path = _write(data)
    try:
        load(path)
    except CpvizError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@FUZZ
@given(data=hostile_recordings())
def test_whatever_the_reader_accepts_replays_and_exports(data: bytes) -> None:
    path = _write(data)
    try:
        with RecordingReader(path) as reader:
            for _ in reader:
                pass
    except CpvizError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: line ")
        event("refused")
        return
    event("accepted, then replayed and exported")
    _fold_everything(path)


@FUZZ
@given(field=st.sampled_from(["cores", "clock_start", "workloads", "started"]), value=WILD)
def test_a_hostile_header_is_refused_or_harmless(field: str, value: Any) -> None:
    header = json.loads(FIXTURE_LINES["blocking.jsonl.gz"][0])
    header[field] = value
    path = _write((json.dumps(header) + "\n").encode())
    try:
        scan(path)
    except CpvizError:
        return
    _fold_everything(path)


# -- decks ----------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """A value as TOML (inline), so the deck parser sees well-formed files with odd values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == math.inf else
                                             "-inf" if value == -math.inf else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
              st.sampled_from(["io", "cpu", "serial", "threads", "timeline", "cores"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["n", "k", "timeline", "x"]),
                                            inner, max_size=3)),
    max_leaves=8,
)


EXAMPLE_DECK = tomllib.loads((ROOT / "examples" / "talk.toml").read_text(encoding="utf-8"))


def _deck_text(deck: dict[str, Any]) -> str:
    lines = [f"{k} = {_toml(v)}" for k, v in deck.items() if k not in ("defaults", "scene")]
    if isinstance(deck.get("defaults"), dict):
        lines.append("[defaults]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in deck["defaults"].items()]
    elif "defaults" in deck:
        lines.insert(0, f"defaults = {_toml(deck['defaults'])}")
    for scene in deck.get("scene", []):
        lines.append("[[scene]]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in scene.items()]
    return "\n".join(lines) + "\n"


@st.composite
def decks(draw: st.DrawFn) -> str:
    """The example deck with a few keys set to something else, or added, or taken away."""
    deck = copy.deepcopy(EXAMPLE_DECK)
    for _ in range(draw(st.integers(1, 3))):
        scene = draw(st.sampled_from(deck["scene"]))
        key = draw(st.sampled_from([*SCENE_KEYS, "bogus"]))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            scene.pop(key, None)
        elif choice == 1 and isinstance(scene.get("params"), dict):
            scene["params"][draw(st.sampled_from(PARAM_NAMES))] = draw(TOML_VALUES)
        else:
            scene[key] = draw(TOML_VALUES)
    if draw(st.integers(0, 5)) == 0:
        deck[draw(st.sampled_from(["title", "defaults", "extra"]))] = draw(TOML_VALUES)
    return _deck_text(deck)


@FUZZ
@given(text=st.one_of(st.text(max_size=200), decks()))
def test_any_deck_is_a_deck_or_one_clean_error(text: str) -> None:
    try:
        parse_deck(text, "fuzz.toml")
    except CpvizError as exc:
        assert str(exc).startswith("fuzz.toml") and "\n" not in str(exc)
        event("refused")
        return
    event("a deck")


# -- --set ----------------------------------------------------------------------------------------

SETTING_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0x10", "1_000", "٣", "true", "",
                     " 5 ", "9" * 5000, "1e-400", "threads", "python"]),
    st.integers().map(str), st.integers(0, 200).map(str), st.floats().map(repr),
)


@FUZZ
@given(
    workload=st.sampled_from([w.key for w in catalogue()]),
    pairs=st.lists(st.tuples(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8)),
                             SETTING_TEXT), max_size=4),
    raw=st.lists(st.text(max_size=20), max_size=2),
)
def test_any_set_value_is_parsed_or_one_clean_error(
    workload: str, pairs: list[tuple[str, str]], raw: list[str]
) -> None:
    argv = ["run", workload]
    for name, value in pairs:
        argv += ["--set", f"{name}={value}"]
    for text in raw:
        argv += ["--set", text]
    try:
        args, extra = build_parser().parse_known_args(argv)
        _settle(args, extra)
        chosen = next(w for w in catalogue() if w.key == workload)
        mode, params = chosen.resolve(None, dict(args.settings))
    except CpvizError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("parsed")
    assert set(params) == {p.name for p in chosen.params} and mode in chosen.modes


@FUZZ
@given(text=st.text(max_size=40))
def test_the_set_splitter_takes_key_value_or_says_so(text: str) -> None:
    try:
        name, _value = _setting(text)
    except argparse.ArgumentTypeError as exc:  # argparse turns it into one UsageError line
        assert "key=value" in str(exc)
        return
    assert name and "=" in text


@pytest.fixture(scope="module", autouse=True)
def _clean_folder() -> Iterator[None]:
    yield
    for path in FOLDER.iterdir():
        path.unlink()
    FOLDER.rmdir()
