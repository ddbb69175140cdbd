"""Talk decks: every mistake is one line naming the file, the scene and the key; good decks load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cpviz.talk.deck import (
    VIEWS,
    WINDOWS,
    Deck,
    DeckError,
    builtin_deck,
    check_report,
    load_deck,
    parse_deck,
)
from cpviz.workloads.registry import find
from tests.paths import ROOT

HEAD = 'title = "T"\n'
ACCEPTED = ("title, caption, notes, workload, mode, params, views, sizes, dilation, window_s")


def _error(text: str) -> str:
    with pytest.raises(DeckError) as caught:
        parse_deck(text, "talk.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def _scene(body: str, title: str = "x") -> str:
    """A deck of one good scene followed by one scene holding ``body``."""
    return HEAD + '[[scene]]\ntitle = "first"\n' + f'[[scene]]\ntitle = "{title}"\n' + body


# --- good decks ----------------------------------------------------------------------------------


def test_a_small_deck_parses_with_resolved_full_params() -> None:
    deck = parse_deck(
        HEAD + '[[scene]]\ntitle = "io"\ncaption = "one\\ntwo"\nnotes = " look "\n'
        'workload = "io"\nmode = "serial"\nparams = { n = 20, real = "no" }\n'
        'views = ["timeline", "cores"]\nsizes = { timeline = 3 }\ndilation = 2\nwindow_s = 1\n',
        "talk.toml",
    )
    assert deck.title == "T" and deck.source == "talk.toml"
    (scene,) = deck.scenes
    assert scene.caption == "one\ntwo" and scene.notes == "look"
    assert (scene.workload, scene.mode) == ("io", "serial")
    assert scene.params == {"n": 20, "latency_ms": 200.0, "k": 100, "real": False}
    assert isinstance(scene.params["latency_ms"], float)
    assert scene.views == ("timeline", "cores")
    assert scene.sizes == {"timeline": 3}
    assert scene.dilation == 2.0 and isinstance(scene.dilation, float)
    assert scene.window_s == 1.0


def test_mode_defaults_to_the_workloads_first_and_views_to_all() -> None:
    (scene,) = parse_deck(HEAD + '[[scene]]\ntitle = "a"\nworkload = "cpu"\n', "d").scenes
    assert scene.mode == find("cpu").modes[0]
    assert scene.params == find("cpu").resolve(None)[1]
    assert scene.views == VIEWS


def test_a_title_only_scene_runs_nothing_and_shows_no_views() -> None:
    (scene,) = parse_deck(HEAD + '[[scene]]\ntitle = "Hello"\n', "d").scenes
    assert (scene.workload, scene.mode, scene.params, scene.views) == (None, None, {}, ())
    assert (scene.dilation, scene.window_s) == (1.0, 5.0)


def test_defaults_apply_to_every_scene_and_a_scene_overrides_them() -> None:
    deck = parse_deck(
        HEAD + '[defaults]\ndilation = 3.0\nwindow_s = 2\n'
        '[[scene]]\ntitle = "a"\nworkload = "io"\nparams = { n = 5 }\n'
        '[[scene]]\ntitle = "b"\ndilation = 1.5\n',
        "d",
    )
    a, b = deck.scenes
    assert (a.dilation, a.window_s, a.workload, a.params["n"]) == (3.0, 2.0, "io", 5)
    assert (b.dilation, b.window_s, b.workload) == (1.5, 2.0, None)


def test_the_built_in_deck_loads_and_walks_the_claims_in_order() -> None:
    deck = builtin_deck()
    assert deck.source == "built-in"
    assert 10 <= len(deck.scenes) <= 16
    assert deck.scenes[0].workload is None and deck.scenes[-1].workload is None
    steps = [(s.workload, s.mode) for s in deck.scenes if s.workload is not None]
    assert steps[:2] == [("io", "serial"), ("io", "concurrent")]
    assert steps.index(("cpu", "loop")) < steps.index(("cpu", "threads")) < steps.index(
        ("cpu", "processes")
    )
    kinds = [s.params["kind"] for s in deck.scenes if (s.workload, s.mode) == ("cpu", "threads")]
    assert kinds == ["python", "hashlib"]
    assert ("blocking", "sync-sleep") in steps and ("pipeline", "steady") in steps
    assert steps[-1][0] == "amdahl"
    for scene in deck.scenes:
        assert scene.caption and scene.notes
        if scene.workload is not None:
            assert scene.params == find(scene.workload).resolve(scene.mode, scene.params)[1]


def test_the_built_in_deck_slows_the_scenes_where_short_waits_matter() -> None:
    for scene in builtin_deck().scenes:
        if scene.workload in ("io", "blocking"):
            assert scene.dilation > 1.0


def test_the_example_deck_loads() -> None:
    deck = load_deck(ROOT / "examples" / "talk.toml")
    assert deck.scenes and any(s.workload for s in deck.scenes)


def test_check_report_lists_every_scene() -> None:
    deck = parse_deck(
        HEAD + '[[scene]]\ntitle = "Open"\n'
        '[[scene]]\ntitle = "CPU on the loop"\nworkload = "cpu"\nmode = "loop"\n'
        'params = { jobs = 2 }\ndilation = 2\n',
        "talk.toml",
    )
    assert check_report(deck).splitlines() == [
        'talk.toml: "T" — 2 scenes, no mistakes found',
        "  1  Open — title only",
        "  2  CPU on the loop — cpu:loop jobs=2 (2.0× slow motion)",
    ]


def test_windows_match_the_apps_zoom_steps() -> None:
    from cpviz.app import WINDOWS as APP_WINDOWS  # imported here: the rest needs no Textual

    assert WINDOWS == APP_WINDOWS


def test_importing_the_deck_module_does_not_load_textual() -> None:
    code = (
        "import sys, cpviz.talk.deck as d\n"
        "d.builtin_deck()\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'textual')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


def test_the_built_in_deck_is_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"talk/*.toml"' in text
    assert isinstance(builtin_deck(), Deck)


# --- mistakes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the deck as a whole
        ('[[scene]]\ntitle = "a"\n', 'talk.toml: missing key "title" (the talk\'s title)'),
        (HEAD, "talk.toml: no scenes; add at least one [[scene]] table"),
        (HEAD + "scene = []\n", "talk.toml: no scenes; add at least one [[scene]] table"),
        (HEAD + 'themes = 1\n[[scene]]\ntitle = "a"\n',
         'talk.toml: unknown key "themes"; accepted: title, defaults, scene'),
        ("title = 3\n", 'talk.toml: key "title": expected a string, got an integer (3)'),
        ('title = "  "\n', 'talk.toml: key "title": must not be empty'),
        (HEAD + '[scene]\ntitle = "a"\n',
         'talk.toml: key "scene": expected an array of tables (write [[scene]]),'
         ' got a table ({"title": "a"})'),
        (HEAD + "defaults = 2\n[[scene]]\ntitle = \"a\"\n",
         'talk.toml: key "defaults": expected a table ([defaults]), got an integer (2)'),
        (HEAD + "".join(f'[[scene]]\ntitle = "s{i}"\n' for i in range(101)),
         'talk.toml: key "scene": 101 scenes; a deck holds at most 100'),
        # [defaults]
        (HEAD + '[defaults]\nwrkload = "io"\n[[scene]]\ntitle = "a"\n',
         'talk.toml: [defaults]: unknown key "wrkload"; accepted: '
         + ACCEPTED.removeprefix("title, ")),
        (HEAD + '[defaults]\ntitle = "x"\n[[scene]]\ntitle = "a"\n',
         'talk.toml: [defaults]: key "title": a title cannot have a default;'
         " each scene sets its own"),
        (HEAD + '[defaults]\ndilation = 0.5\n[[scene]]\ntitle = "a"\n',
         'talk.toml: [defaults]: key "dilation": must be from 1.0 (real time) to 20.0, got 0.5'),
        (HEAD + '[defaults]\nworkload = "io"\n[[scene]]\ntitle = "a"\n',
         'talk.toml: [defaults]: key "workload": what a scene runs cannot have a default;'
         " set it per scene"),
        # a key that came from [defaults] but fails in one scene
        (HEAD + '[defaults]\nsizes = { alarm = 2 }\n[[scene]]\ntitle = "a"\n'
         'workload = "io"\nviews = ["timeline"]\n',
         'talk.toml: scene 1 ("a"): key "sizes.alarm": view "alarm" is not shown in this scene;'
         ' shown: timeline (set in [defaults])'),
    ],
)
def test_deck_level_mistakes(text: str, message: str) -> None:
    assert _error(text) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # keys and types
        ('wrkload = "io"\n',
         f'talk.toml: scene 2 ("x"): unknown key "wrkload"; accepted: {ACCEPTED}'),
        ('views = "cores"\n',
         'talk.toml: scene 2 ("x"): key "views": expected an array of view names,'
         ' e.g. ["cores", "alarm"], got a string ("cores")'),
        ("caption = 3\n",
         'talk.toml: scene 2 ("x"): key "caption": expected a string, got an integer (3)'),
        ("notes = [1]\n",
         'talk.toml: scene 2 ("x"): key "notes": expected a string, got an array ([1])'),
        ("dilation = true\n",
         'talk.toml: scene 2 ("x"): key "dilation": expected a number, got a boolean (true)'),
        ('params = "n=3"\nworkload = "io"\n',
         'talk.toml: scene 2 ("x"): key "params": expected a table, e.g. { n = 20 },'
         ' got a string ("n=3")'),
        ('workload = "io"\nparams = { n = [1] }\n',
         'talk.toml: scene 2 ("x"): key "params.n": expected a number, string or boolean,'
         " got an array ([1])"),
        ("sizes = [1]\n",
         'talk.toml: scene 2 ("x"): key "sizes": expected a table, e.g. { timeline = 3 },'
         " got an array ([1])"),
        # workload, mode, params
        ('workload = "ioo"\n',
         'talk.toml: scene 2 ("x"): key "workload": unknown workload \'ioo\'; choose one of:'
         " io, cpu, blocking, pipeline, shared-state, deadlock, oversubscribe, amdahl, server"),
        ('workload = "cpu"\nmode = "lop"\n',
         'talk.toml: scene 2 ("x"): key "mode": unknown mode \'lop\' for cpu; choose one of:'
         " threads, processes, serial, loop"),
        ('mode = "serial"\n',
         'talk.toml: scene 2 ("x"): key "mode": needs a workload;'
         " add a workload key or remove this one"),
        ("params = { n = 3 }\n",
         'talk.toml: scene 2 ("x"): key "params": needs a workload;'
         " add a workload key or remove this one"),
        ('workload = "io"\nparams = { n = 0 }\n',
         'talk.toml: scene 2 ("x"): key "params.n": n must be from 1 to 20000, got 0'),
        ('workload = "io"\nparams = { n = "many" }\n',
         'talk.toml: scene 2 ("x"): key "params.n": n must be an integer from 1 to 20000,'
         " got 'many'"),
        ('workload = "io"\nparams = { n = 2.5 }\n',
         'talk.toml: scene 2 ("x"): key "params.n": n must be a whole number, got 2.5'),
        ('workload = "io"\nparams = { latency_ms = true }\n',
         'talk.toml: scene 2 ("x"): key "params.latency_ms": latency_ms must be a number,'
         " got true"),
        ('workload = "io"\nparams = { real = "maybe" }\n',
         'talk.toml: scene 2 ("x"): key "params.real": real must be true or false,'
         " got 'maybe'"),
        ('workload = "cpu"\nparams = { kind = "rust" }\n',
         'talk.toml: scene 2 ("x"): key "params.kind": kind must be one of: python, hashlib,'
         " zlib; got 'rust'"),
        ('workload = "io"\nparams = { nn = 3 }\n',
         'talk.toml: scene 2 ("x"): key "params.nn": unknown parameter \'nn\' for io;'
         " accepted: n, latency_ms, k, real"),
        # a check spanning two parameters (the workload's own check)
        ('workload = "cpu"\nmode = "processes"\nparams = { start = "fork", fresh = false }\n',
         'talk.toml: scene 2 ("x"): key "params": start=fork needs fresh=true: without it the'
         " jobs go to the lab's shared pool, which is started once with spawn"),
        # views and sizes
        ('views = ["cores", "lanes"]\n',
         'talk.toml: scene 2 ("x"): key "views": unknown view "lanes"; choose from: cores,'
         " runs, measures, timeline, alarm"),
        ('views = ["cores", "alarm", "cores"]\n',
         'talk.toml: scene 2 ("x"): key "views": view "cores" is listed twice'),
        ('views = ["cores"]\nsizes = { timeline = 2 }\n',
         'talk.toml: scene 2 ("x"): key "sizes.timeline": view "timeline" is not shown in'
         " this scene; shown: cores"),
        ("sizes = { cores = 2 }\n",
         'talk.toml: scene 2 ("x"): key "sizes.cores": view "cores" is not shown in this'
         " scene; shown: none"),
        ('views = ["cores"]\nsizes = { cores = 11 }\n',
         'talk.toml: scene 2 ("x"): key "sizes.cores": must be from 1 to 10, got 11'),
        ('views = ["cores"]\nsizes = { cores = 0 }\n',
         'talk.toml: scene 2 ("x"): key "sizes.cores": must be from 1 to 10, got 0'),
        ('views = ["cores"]\nsizes = { cores = 1.5 }\n',
         'talk.toml: scene 2 ("x"): key "sizes.cores": expected an integer from 1 to 10,'
         " got a float (1.5)"),
        ("sizes = { lanes = 2 }\n",
         'talk.toml: scene 2 ("x"): key "sizes.lanes": unknown view "lanes"; choose from:'
         " cores, runs, measures, timeline, alarm"),
        # slow motion and the timeline span
        ("dilation = 25\n",
         'talk.toml: scene 2 ("x"): key "dilation": must be from 1.0 (real time) to 20.0,'
         " got 25"),
        ("dilation = nan\n",
         'talk.toml: scene 2 ("x"): key "dilation": must be from 1.0 (real time) to 20.0,'
         " got nan"),
        ("window_s = 3\n",
         'talk.toml: scene 2 ("x"): key "window_s": 3 is not a timeline span; choose one of:'
         " 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60"),
        # caption
        ('caption = """\none\ntwo\nthree"""\n',
         'talk.toml: scene 2 ("x"): key "caption": 3 lines; a caption has at most 2'),
        (f'caption = "ok\\n{"w" * 91}"\n',
         'talk.toml: scene 2 ("x"): key "caption": line 2 is 91 characters; at most 90 fit'
         " in large text"),
    ],
)
def test_scene_mistakes_name_the_scene_and_key(body: str, message: str) -> None:
    assert _error(_scene(body)) == message


def test_a_scene_without_a_title_is_named_by_number() -> None:
    text = HEAD + '[[scene]]\ntitle = "a"\n[[scene]]\ncaption = "c"\n'
    assert _error(text) == 'talk.toml: scene 2: missing key "title"'


def test_a_bad_title_is_named_by_number_only() -> None:
    assert _error(_scene("", title="t" * 61)) == (
        'talk.toml: scene 2: key "title": 61 characters; at most 60 fit in large text'
    )
    assert _error(HEAD + "[[scene]]\ntitle = 3\n") == (
        'talk.toml: scene 1: key "title": expected a string, got an integer (3)'
    )
    assert _error(HEAD + '[[scene]]\ntitle = "a\\nb"\n') == (
        'talk.toml: scene 1: key "title": must be one line'
    )


def test_a_key_with_a_newline_still_gives_one_line() -> None:
    message = _error(_scene('"wrk\\nload" = 1\n'))
    assert message.startswith('talk.toml: scene 2 ("x"): unknown key "wrk\\nload"')


def test_invalid_toml_names_the_line() -> None:
    text = HEAD + '[[scene]]\ntitle = "a"\n\n\n\nmode = = "x"\n'
    assert _error(text) == "talk.toml: line 7: not valid TOML (invalid value, column 8)"


def test_toml_cut_off_at_the_end_names_the_last_line() -> None:
    assert _error(HEAD + 'notes = "open') == (
        "talk.toml: line 2: not valid TOML (unterminated string at the end of the file)"
    )


def test_a_key_given_twice_is_a_toml_mistake() -> None:
    assert _error(HEAD + 'title = "again"\n').startswith("talk.toml: line 2: not valid TOML (")


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(DeckError) as caught:
        load_deck(path)
    assert str(caught.value) == f"{path}: no such file"


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DeckError) as caught:
        load_deck(tmp_path)
    assert str(caught.value) == f"{tmp_path}: is a directory, not a deck file"


def test_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "slides.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DeckError) as caught:
        load_deck(path)
    assert str(caught.value) == (
        f"{path}: not UTF-8 text (byte 0x89 at offset 0); a deck is a TOML text file"
    )


def test_a_file_too_large_for_a_deck(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(DeckError) as caught:
        load_deck(path)
    assert str(caught.value) == f"{path}: larger than 1024 KiB; not a deck file"


def test_a_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + '[[scene]]\ntitle = "a"\n').encode())
    deck = load_deck(path)
    assert deck.title == "T" and deck.source == str(path)


def test_a_file_with_a_mistake_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "talk.toml"
    path.write_text(HEAD + '[[scene]]\ntitle = "CPU"\nworkload = "cpu"\nmode = "lop"\n')
    with pytest.raises(DeckError) as caught:
        load_deck(path)
    assert str(caught.value).startswith(f'{path}: scene 1 ("CPU"): key "mode": unknown mode')


@pytest.mark.parametrize("key", ["workload", "mode", "params"])
def test_what_a_scene_runs_has_no_default(key: str) -> None:
    value = {"workload": '"io"', "mode": '"serial"', "params": "{ n = 3 }"}[key]
    with pytest.raises(DeckError) as err:
        parse_deck(f'title = "T"\n[defaults]\n{key} = {value}\n[[scene]]\ntitle = "x"\n', "d.toml")
    assert str(err.value).startswith(f'd.toml: [defaults]: key "{key}": ')
    assert "set it per scene" in str(err.value)
