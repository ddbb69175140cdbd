"""Screenshots keep every glyph in its column, whatever renderer draws them."""

from __future__ import annotations

import re

from cpviz.screenshot import on_the_grid

CELL = 12.2


def _run(x_cells: int, text: str, cls: str = "r1") -> str:
    cells = len(text.replace("&#160;", " "))
    return (f'<text class="{cls}" x="{x_cells * CELL:g}" y="10" textLength="{cells * CELL:g}" '
            f'clip-path="url(#line-1)">{text}</text>')


def _runs(svg: str) -> list[tuple[float, float, str]]:
    return [(float(x), float(n), t) for x, n, t in
            re.findall(r'x="([0-9.]+)" y="10" textLength="([0-9.]+)"[^>]*>([^<]*)<', svg)]


def test_blank_cells_and_glyphs_in_one_run_each_get_their_own_x() -> None:
    svg = _run(19, "&#160;" * 21 + "▂▃█" + "&#160;" * 2)
    runs = _runs(on_the_grid(svg))
    assert [t for _, _, t in runs] == ["&#160;" * 21, "▂▃█", "&#160;" * 2]
    # The bars start at their own column (19 + 21), not stretched toward the run's start.
    assert abs(runs[1][0] - 40 * CELL) < 1e-6 and abs(runs[1][1] - 3 * CELL) < 1e-6
    assert 'clip-path="url(#line-1)"' in on_the_grid(svg)


def test_runs_of_one_kind_and_words_are_left_alone() -> None:
    for svg in (_run(0, "████"), _run(3, "&#160;&#160;"), _run(7, "─╂─"),
                _run(9, "NO&#160;PROGRESS")):
        assert on_the_grid(svg) == svg
