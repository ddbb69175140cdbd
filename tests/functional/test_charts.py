"""Sweeps and latency drawn as charts on the measures area, with the numbers one key (t) away.

The chart logic is checked on plain values; the screens on recordings kept as fixtures, paused
at a named moment with a manual clock, at 80×24 and 120×40.
"""

from __future__ import annotations

import pytest

from cpviz.screenshot import replay_app
from cpviz.widgets import Measures
from cpviz.widgets.chart import (
    MARKS,
    Series,
    joined,
    nice_top,
    plot,
    sweep_values,
    x_axis,
    x_columns,
)
from tests.functional.test_app_measures import SIZE, make
from tests.paths import FIXTURES
from tests.scripted import settled

pytestmark = pytest.mark.anyio

BRAILLE = range(0x2801, 0x2900)
BLOCKS = set("▁▂▃▄▅▆▇█")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_scale_tops_are_numbers_that_read() -> None:
    assert [nice_top(v) for v in (0.7, 1.0, 1.65, 2.2, 4.1, 83.0, 0.0)] == [
        1.0, 1.0, 2.0, 2.5, 5.0, 100.0, 1.0]


def test_bars_and_line_differ_in_shape_so_the_chart_reads_without_colour() -> None:
    bars = Series("measured", "bars", "gauge", (1.0, None, 2.0, None))
    line = Series("law", "line", "law", (1.0, 1.5, 2.0, 2.5))
    rows = plot([bars, line], 3, 4, (2.5, 1.0))
    text = ["".join(t for t, _ in row) for row in rows]
    cells = "".join(text)
    assert BLOCKS & set(cells)
    assert any(ord(ch) in BRAILLE for ch in cells)
    # The law passes above the measured 2.0 at the last column, on the top row.
    assert ord(text[0][3]) in BRAILLE


def test_the_measured_bar_is_drawn_over_the_line_where_they_meet() -> None:
    bars = Series("measured", "bars", "gauge", (2.5,))
    line = Series("law", "line", "law", (1.0,))
    rows = plot([bars, line], 2, 1, (2.5, 1.0))
    assert [row[0] for row in rows] == [("█", "gauge"), ("█", "gauge")]


def test_worker_counts_sit_under_their_bars_without_overlapping() -> None:
    col, lo, hi = x_columns([1, 2, 4, 8, 16, 64], 40, log=True)
    assert (lo, hi) == (1, 64)
    axis = x_axis([1, 2, 4, 8, 16, 64], 40, col)
    assert axis.split() == ["1", "2", "4", "8", "16", "64"]
    values = sweep_values([(1, 3.0), (64, 5.0)], 40, col, width=3)
    assert values[0] == 3.0 and values[-1] == 5.0 and values[20] is None


def test_a_line_through_measured_points_joins_them_straight() -> None:
    assert joined((1.0, None, None, 4.0, None)) == (1.0, 2.0, 3.0, 4.0, None)


async def test_a_sweep_is_a_chart_and_t_shows_its_numbers() -> None:
    app, _ = make(5.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app._frame()
        await pilot.pause()
        measures = app.query_one(Measures)
        assert {kind for kind, _ in measures._lines} == {"chart"}
        assert "Amdahl's law" in str(measures.border_subtitle)
        assert "(theory)" in str(measures.border_subtitle)
        width = measures._content_size().width
        rows = [measures._draw(y, width).text for y in range(len(measures._lines))]
        assert rows[0].startswith("speedup")
        assert rows[-1].startswith("workers") and rows[-1].split()[1:] == ["1", "2", "3"]
        await pilot.press("t")
        app._frame()
        await pilot.pause()
        assert [kind for kind, _ in measures._lines] == ["phase", "sweep-x", "sweep", "sweep"]
        assert not measures.border_subtitle



CHARTS = [("amdahl", "end"), ("oversubscribe", "end"), ("server", "mid")]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize(("fixture", "at"), CHARTS, ids=[f for f, _ in CHARTS])
def test_chart_snapshot(snap_compare, fixture: str, at: str, size: tuple[int, int]) -> None:
    app = replay_app(FIXTURES / f"{fixture}.jsonl.gz", at)
    assert snap_compare(app, terminal_size=size, run_before=settled)


def test_marks_name_each_shape() -> None:
    assert set(MARKS) == {"bars", "line"}
