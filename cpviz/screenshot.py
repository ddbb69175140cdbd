"""``cpviz screenshot``: the screen at a moment of a recording, as an SVG.

The snapshot tests and the README's screenshots are both drawn here, from recordings kept as
fixtures, replayed paused at a fixed position with a manual wall clock. Nothing depends on the
machine that draws them, so drawing them again changes nothing unless the screen did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cpviz.app import CpvizApp
from cpviz.engine.clock import ManualClock
from cpviz.engine.recording import load
from cpviz.engine.replay import ReplayController, ReplaySource


def replay_app(path: str | Path, at: float) -> CpvizApp:
    """An app over the recording at ``path``, paused ``at`` seconds from its start.

    ``at`` past the end shows the end. Raises RecordingError for a bad file.
    """
    recording = load(path)
    source = ReplaySource.from_recording(recording, wall=ManualClock(0.0), paused=True)
    source.seek(min(max(0.0, at), source.duration))
    controller = ReplayController(source, recording.header.workloads, recording.path)
    return CpvizApp(source, controller)


async def settle(app: CpvizApp) -> None:
    """Fold everything up to the replay position and let the screen catch up."""
    app._frame()
    await app.workers.wait_for_complete()


async def render(
    path: str | Path,
    at: float,
    size: tuple[int, int] = (160, 48),
    press: Sequence[str] = (),
) -> str:
    """The screen of ``path`` at ``at`` seconds (after pressing ``press``), as SVG text."""
    app = replay_app(path, at)
    async with app.run_test(size=size) as pilot:
        await settle(app)
        await pilot.pause()
        for key in press:
            await pilot.press(key)
        await settle(app)
        await pilot.pause()
        return app.export_screenshot(title=f"cpviz — {Path(path).name} at {at:g} s")
