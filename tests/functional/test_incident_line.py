"""The open incident's line wraps rather than losing its end on a narrow screen."""

from __future__ import annotations

import pytest

from cpviz.screenshot import replay_app, settle
from cpviz.widgets import BlockingAlarm
from tests.paths import FIXTURES

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_incident_line_keeps_the_call_and_the_code_at_any_width(
    size: tuple[int, int],
) -> None:
    app = replay_app(FIXTURES / "blocking.jsonl.gz", "incident")
    async with app.run_test(size=size) as pilot:
        for _ in range(2):
            await settle(app)
            await pilot.pause()
        alarm = app.query_one(BlockingAlarm)
        width = alarm.size.width
        lines = [alarm.render_line(y).text for y in range(alarm.size.height)]
        status = " ".join(line.strip() for line in lines[:2])
        # The fixture's freeze was classified (the viewer reads the loop thread's OS state):
        # the headline names its cause.
        assert "LOOP BLOCKED" in lines[0]
        assert "time.sleep at cpviz/workloads/blocking.py:36" in status
        assert "— time.sleep(block_s)" in status
        assert "…" not in status
        assert all(len(line) <= width for line in lines)
        assert any(line.startswith("no incidents yet") for line in lines)
