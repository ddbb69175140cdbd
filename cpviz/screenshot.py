"""``cpviz screenshot``: the screen at a moment of a recording, as an SVG.

The snapshot tests and the README's screenshots are both drawn here, from recordings kept as
fixtures, replayed paused at a fixed position with a manual wall clock. Nothing depends on the
machine that draws them, so drawing them again changes nothing unless the screen did.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from rich.cells import cell_len

from cpviz.app import WINDOWS, CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.errors import CpvizError
from cpviz.engine.recording.index import Index, scan
from cpviz.engine.replay import ReplayController, ReplaySource

#: Moments a screenshot can be taken at, by name (see :func:`moment`).
MOMENTS = ("mid", "end", "incident", "stall")


#: One text run of Textual's SVG export: its attributes around x and textLength, and its text.
_RUN = re.compile(r'<text ([^>]*?)x="([0-9.]+)" (y="[0-9.]+") textLength="([0-9.]+)"([^>]*)>'
                  r'([^<]*)</text>')


def on_the_grid(svg: str) -> str:
    """``svg`` with every text run that mixes blank cells and glyphs split at their borders.

    Textual's export writes a line's cells of one style as one run and stretches it to its
    cells with ``textLength``. A renderer spreads that stretch evenly over the run's glyphs,
    so where a font's space and block glyphs differ in width, bars start columns away from
    their time (a gauge drawn half a second early beside the timeline). Runs of one kind each
    get their own x, so every glyph sits in its own column in any renderer.
    """

    def split(match: re.Match[str]) -> str:
        before, x, y, length, after, escaped = match.groups()
        text = html.unescape(escaped)
        cells = cell_len(text)
        if (not cells or text.strip("\xa0 ") == text or not text.strip("\xa0 ")
                or not any(_drawn(c) for c in text)):
            return match.group(0)  # all of one kind, or words: nothing to misplace
        cell_w = float(length) / cells
        out: list[str] = []
        at = float(x)
        for _blank, run in groupby(text, key=lambda c: c in "\xa0 "):
            part = "".join(run)
            width = cell_len(part) * cell_w
            body = html.escape(part, quote=False).replace("\xa0", "&#160;")
            out.append(f'<text {before}x="{at:g}" {y} textLength="{width:g}"{after}>{body}</text>')
            at += width
        return "".join(out)

    return _RUN.sub(split, svg)


def _drawn(char: str) -> bool:
    """A glyph that draws rather than writes: box drawing, blocks, shapes, braille."""
    return "\u2500" <= char <= "\u25ff" or "\u2800" <= char <= "\u28ff"


class ScreenshotError(CpvizError, ValueError):
    """A moment the recording does not have."""


def position(index: Index, at: str) -> float:
    """``--at`` as seconds from the recording's start: a named moment, or a number of seconds
    within the recording (anything else is refused, naming what the recording spans)."""
    if at in MOMENTS:
        return min(max(0.0, moment(index, at)), index.duration)
    try:
        seconds = float(at)
    except ValueError:
        raise ScreenshotError(
            f"--at takes seconds or one of: {', '.join(MOMENTS)}; got {at!r}"
        ) from None
    if not 0.0 <= seconds <= index.duration:
        raise ScreenshotError(
            f"--at {at} is outside {index.path}: it spans 0 to {index.duration:.3f} s "
            f"(or use one of: {', '.join(MOMENTS)})"
        )
    return seconds


def moment(index: Index, name: str) -> float:
    """Seconds from the recording's start of a named moment, worked out from its index.

    ``mid``: halfway through the first run; ``end``: just after the last run ended;
    ``incident``: inside the first loop freeze, once the alarm has fired; ``stall``: a little
    after the first no-progress alarm. Raises ScreenshotError when the recording has none.
    """
    start = index.header.clock_start
    if name == "mid" and index.first_run_start is not None:
        end = index.first_run_end if index.first_run_end is not None else index.end
        return (index.first_run_start + end) / 2 - start
    if name == "end" and index.last_run_end is not None:
        return index.last_run_end + 0.05 - start
    if name == "incident" and index.first_freeze is not None:
        detected, over = index.first_freeze
        inside = detected + 0.05
        if over is not None:
            inside = min(inside, (detected + over) / 2)
        return inside - start
    if name == "stall" and index.first_stall is not None:
        return index.first_stall + 0.2 - start
    raise ScreenshotError(f"{index.path} has no {name!r} moment; choose one of: "
                     + ", ".join(MOMENTS))


def replay_app(path: str | Path, at: float | str, index: Index | None = None) -> CpvizApp:
    """An app over the recording at ``path``, paused ``at`` seconds (or a named moment) from
    its start. ``at`` past the end shows the end. Raises RecordingError for a bad file.

    The recording is streamed: only what the Model retains up to ``at`` is held.
    """
    index = index if index is not None else scan(path)
    if isinstance(at, str):
        at = moment(index, at)
    source = ReplaySource.open(path, index=index, wall=ManualClock(0.0), paused=True)
    source.seek(min(max(0.0, at), source.duration))
    controller = ReplayController(source, index.header.workloads, index.path)
    app = CpvizApp(source, controller)
    # The narrowest window that reaches back to the recording's start, so a short recording
    # fills the timeline instead of sitting in its last few columns.
    app.window_s = next((w for w in WINDOWS if w >= source.position), WINDOWS[-1])
    return app


async def settle(app: CpvizApp) -> None:
    """Fold everything up to the replay position and let the screen catch up."""
    app._frame()
    await app.workers.wait_for_complete()


async def render(
    path: str | Path,
    at: float | str,
    size: tuple[int, int] = (160, 48),
    press: Sequence[str] = (),
    index: Index | None = None,
) -> str:
    """The screen of ``path`` at ``at`` seconds (after pressing ``press``), as SVG text."""
    app = replay_app(path, at, index)
    async with app.run_test(size=size) as pilot:
        for _ in range(2):  # the second frame draws on the layout the first one settled
            await settle(app)
            await pilot.pause()
        for key in press:
            await pilot.press(key)
        await settle(app)
        await pilot.pause()
        return on_the_grid(app.export_screenshot(title="cpviz"))
