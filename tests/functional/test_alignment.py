"""The band, the frozen row and the task rows share one column mapping, on screen and in SVG."""

from __future__ import annotations

import re

import pytest

from cpviz.screenshot import render, replay_app, settle
from cpviz.widgets import Timeline
from cpviz.widgets.timeline import LABEL_W
from tests.paths import FIXTURES

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
BLOCKING = FIXTURES / "blocking.jsonl.gz"
FROZEN = "▓"
#: One ``<text>`` element of Textual's SVG export: its x and its text.
TEXT = re.compile(r'<text [^>]*x="([0-9.]+)"[^>]*>([^<]*)</text>')


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_band_counts_each_column_under_the_rows_columns() -> None:
    """The run / ready / wait glyphs start after the same label width as the task rows."""
    app = replay_app(BLOCKING, "incident")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            await settle(app)
            await pilot.pause()
        timeline = app.query_one(Timeline)
        ncols, _, _, t0, t1 = timeline._frame(timeline.axis_width())
        waiting = app.model.band(t0, t1, ncols)[2]
        assert any(waiting)
        line = timeline.render_line(timeline.header.index("wait")).text
        assert [ch != " " for ch in line[LABEL_W : LABEL_W + ncols]] == [v > 0 for v in waiting]


async def test_the_frozen_row_is_drawn_at_the_task_rows_x_in_svg() -> None:
    """Each run of frozen cells is its own SVG text at its own x, the same x as the rows'.

    Merged with the gap before it, a run is placed by the renderer's font metrics instead,
    and drifted off the task rows by up to seconds in the README's screenshot.
    """
    svg = await render(BLOCKING, "incident", SIZE)
    texts = [(float(x), body) for x, body in TEXT.findall(svg)]
    # Every text with a frozen cell but the border's legend, which spells the glyphs out.
    runs = [(x, body) for x, body in texts if FROZEN in body and "running" not in body]
    assert len(runs) >= 2  # the frozen row and at least one task row
    assert all(set(body) == {FROZEN} for _, body in runs), "frozen cells share a text with gaps"
    assert len({x for x, _ in runs}) == 1


async def test_the_lanes_columns_sit_over_the_task_rows_columns() -> None:
    """The worker processes' burst on the lanes and a task's spawn on its row fall at the x
    the one axis gives their times, and both views start their columns at the same x."""
    from cpviz.widgets import CoreLanes
    from cpviz.widgets.axis import Axis
    from tests.scripted import MAIN_AT, make_app

    app, _, _ = make_app(MAIN_AT, start=("io", "concurrent"))
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(2):
            app._frame()
            await pilot.pause()
        timeline, lanes = app.query_one(Timeline), app.query_one(CoreLanes)
        axis = Axis.of(timeline.axis_width(), timeline.window_s, timeline.now)
        assert lanes.folding[1] > 1
        top = lanes.render_line(0).text  # cpu0's top row: only a core nearly full reaches it
        busy = [i for i, ch in enumerate(top) if i >= LABEL_W and ch != " "]
        lane_x = lanes.content_region.x
        row_x = timeline.content_region.x
        assert lane_x == row_x
        # cpu:processes runs 0.5 s to 2.75 s of samples (the samples at 0.75..2.75 are busy).
        start = axis.x(0.5)
        end = axis.x(2.75)
        assert start is not None and end is not None
        assert abs(busy[0] - start) <= 1 and abs(busy[-1] - end) <= 1, (busy[0], start,
                                                                         busy[-1], end)
        rows = [timeline.render_line(y).text for y in range(timeline.size.height)]
        root = next(r for r in rows if r.startswith("io:concurrent"))
        drawn = [i for i, ch in enumerate(root) if i >= LABEL_W and ch != " "]
        assert drawn[0] == axis.x(3.0)  # spawned at 3.0 s, on the same axis as the lanes
