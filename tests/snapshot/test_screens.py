"""Every screen and state, drawn from recordings kept as fixtures (``tests/fixtures/make.sh``).

Each recording was made live with ``cpviz run ... --record``; here it is replayed paused at a
named moment with a manual wall clock, so the same screen comes out on any machine. Update the
baselines after an intended change with
``pytest tests/snapshot/test_screens.py --snapshot-update`` and look at the report before
committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cpviz.app import CpvizApp
from cpviz.screenshot import replay_app
from tests.paths import FIXTURES
from tests.scripted import settled

LARGE = (160, 48)
SMALL = (80, 24)



def app_at(name: str, at: float | str) -> CpvizApp:
    return replay_app(FIXTURES / f"{name}.jsonl.gz", at)


# One screen per workload family, large, at the moment that shows its claim.
FAMILIES = [
    ("io", "mid"),
    ("cpu-hashlib", "mid"),
    ("cpu", "end"),
    ("blocking", "incident"),
    ("pipeline", "mid"),
    ("shared-state", "end"),
    ("deadlock", "stall"),
    ("oversubscribe", "end"),
    ("amdahl", "end"),
    ("server", "mid"),
    ("server-loop", "mid"),
]


@pytest.mark.parametrize(("fixture", "at"), FAMILIES, ids=[f for f, _ in FAMILIES])
def test_each_family(snap_compare, fixture: str, at: str) -> None:
    assert snap_compare(app_at(fixture, at), terminal_size=LARGE, run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_alarm_lit(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app_at("blocking", "incident"), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_incident_list_after_the_run(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app_at("blocking", "end"), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app_at("pipeline", "mid"), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_help(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app_at("io", "mid"), press=["question_mark"], terminal_size=size,
                        run_before=settled)


def test_too_small(snap_compare) -> None:
    assert snap_compare(app_at("io", "mid"), terminal_size=(60, 15), run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_replay_seeking(snap_compare, size: tuple[int, int]) -> None:
    """The seek prompt over a paused replay, with a value typed in."""
    assert snap_compare(app_at("blocking", 1.0), press=["g", "2", ".", "5"],
                        terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_replay_after_jumping_to_the_next_incident(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app_at("blocking", 0.0), press=["n"], terminal_size=size,
                        run_before=settled)


def test_screenshots_are_the_same_every_time(tmp_path: Path) -> None:
    from cpviz.cli import main

    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    for out in (first, second):
        assert main(["screenshot", str(FIXTURES / "deadlock.jsonl.gz"), str(out),
                     "--at", "stall", "--size", "100x30"]) == 0
    assert first.read_text() == second.read_text()
    assert "NO&#160;PROGRESS" in first.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "stall"], "has no 'stall' moment"),
        (["--at", "soon"], "--at takes seconds or one of"),
        (["--size", "big"], "--size takes WIDTHxHEIGHT"),
    ],
)
def test_screenshot_mistakes_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from cpviz.cli import main

    code = main(["screenshot", str(FIXTURES / "io.jsonl.gz"), str(tmp_path / "x.svg"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
