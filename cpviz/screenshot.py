"""``cpviz screenshot``: the screen at a moment of a recording, as an SVG.

The snapshot tests and the README's screenshots are both drawn here, from recordings kept as
fixtures, replayed paused at a fixed position with a manual wall clock. Nothing depends on the
machine that draws them, so drawing them again changes nothing unless the screen did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cpviz.app import WINDOWS, CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.events import IncidentEnd, IncidentStart, RunEnd, RunStart, StallStart
from cpviz.engine.recording import Recording, load
from cpviz.engine.replay import ReplayController, ReplaySource

#: Moments a screenshot can be taken at, by name (see :func:`moment`).
MOMENTS = ("mid", "end", "incident", "stall")


def moment(recording: Recording, name: str) -> float:
    """Seconds from the recording's start of a named moment, worked out from its events.

    ``mid``: halfway through the first run; ``end``: just after the last run ended;
    ``incident``: inside the first loop freeze, once the alarm has fired; ``stall``: a little
    after the first no-progress alarm. Raises ValueError when the recording has no such moment.
    """
    start = recording.header.clock_start
    events = recording.events
    runs = [ev for ev in events if isinstance(ev, RunStart)]
    ends = [ev for ev in events if isinstance(ev, RunEnd)]
    if name == "mid" and runs:
        end = ends[0].t if ends else max(getattr(ev, "t", start) for ev in events)
        return (runs[0].t + end) / 2 - start
    if name == "end" and ends:
        return ends[-1].t + 0.05 - start
    if name == "incident":
        first = next((ev for ev in events if isinstance(ev, IncidentStart)), None)
        if first is not None:
            over = next((ev for ev in events if isinstance(ev, IncidentEnd)
                         and ev.incident_id == first.incident_id), None)
            inside = first.t + 0.05
            if over is not None:
                inside = min(inside, (first.t + over.t) / 2)
            return inside - start
    if name == "stall":
        stall = next((ev for ev in events if isinstance(ev, StallStart)), None)
        if stall is not None:
            return stall.t + 0.2 - start
    raise ValueError(f"{recording.path} has no {name!r} moment; choose one of: "
                     + ", ".join(MOMENTS))


def replay_app(path: str | Path, at: float | str) -> CpvizApp:
    """An app over the recording at ``path``, paused ``at`` seconds (or a named moment) from
    its start. ``at`` past the end shows the end. Raises RecordingError for a bad file."""
    recording = load(path)
    if isinstance(at, str):
        at = moment(recording, at)
    source = ReplaySource.from_recording(recording, wall=ManualClock(0.0), paused=True)
    source.seek(min(max(0.0, at), source.duration))
    controller = ReplayController(source, recording.header.workloads, recording.path)
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
) -> str:
    """The screen of ``path`` at ``at`` seconds (after pressing ``press``), as SVG text."""
    app = replay_app(path, at)
    async with app.run_test(size=size) as pilot:
        for _ in range(2):  # the second frame draws on the layout the first one settled
            await settle(app)
            await pilot.pause()
        for key in press:
            await pilot.press(key)
        await settle(app)
        await pilot.pause()
        return app.export_screenshot(title="cpviz")
