"""Every role in the cores' legend has a colour of its own."""

from __future__ import annotations

import pytest

from cpviz.widgets import CoreLanes
from tests.scripted import MAIN_AT, make_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_each_legend_swatch_has_its_own_colour() -> None:
    app, _, _ = make_app(MAIN_AT)
    async with app.run_test(size=(120, 40)) as pilot:
        app._frame()
        await pilot.pause()
        lanes = app.query_one(CoreLanes)
        legend = list(lanes.legend().render(app.console))
        swatches = {legend[i + 1].text.strip(): seg.style
                    for i, seg in enumerate(legend) if seg.text.strip() == "█"}
        assert {"probe", "other"} <= set(swatches)
        colours = [style.color if style is not None else None for style in swatches.values()]
        assert None not in colours
        assert len(set(colours)) == len(colours), swatches
