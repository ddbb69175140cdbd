"""At 120 columns the results read whole: full headers, full run names, uncut values."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from cpviz.engine.events import RunResult
from cpviz.screenshot import replay_app, settle
from cpviz.widgets.run_panel import FULL_W, results_full, results_table, run_label
from tests.paths import FIXTURES

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_results_at_120_columns_have_full_headers_and_uncut_values() -> None:
    app = replay_app(FIXTURES / "oversubscribe.jsonl.gz", "end")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(2):
            await settle(app)
            await pilot.pause()
        results = app.runs.query_one("#results", Static)
        lines = [results.render_line(y).text.rstrip() for y in range(results.size.height)]
        assert lines[0].split() == ["wall", "CPU", "parallelism", "speedup", "freezes",
                                    "outcome"]
        assert "oversubscribe:processes" in lines
        assert not any("…" in line for line in lines)


def test_every_figure_fits_under_its_header() -> None:
    result = RunResult("io", "concurrent", (), 0.0832, 483.2, 999.9, 123.4, None, ())
    text = results_full([result]).plain.splitlines()
    assert text[1] == "io:concurrent"
    assert text[2].split() == ["83.2ms", "483s", "999.90×", "123.4×", "0", "ok"]
    assert max(len(line) for line in text) <= FULL_W


def test_simulated_and_real_runs_read_apart() -> None:
    sim = RunResult("io", "concurrent", (("real", False),), 2.0, 0.1, 0.05, None, None, ())
    real = RunResult("io", "concurrent", (("real", True),), 2.0, 0.1, 0.05, None, None, ())
    plain = RunResult("cpu", "threads", (("chunks", 4),), 2.0, 0.1, 0.05, None, None, ())
    lines = results_full([sim, real, plain]).plain.splitlines()
    assert "io:concurrent (sim)" in lines and "io:concurrent (real)" in lines
    assert "cpu:threads" in lines  # no real mode: nothing to tell apart
    assert run_label("io", "serial", (("real", True),)) == "io:serial (real)"
    narrow = results_table([sim, real])
    assert [str(c) for c in narrow.columns[0].cells] == ["io:concurrent (sim)",
                                                         "io:concurrent (real)"]
