"""10,000 tasks on 64 cores at 160x48: the rows are grouped, cpviz's own hidden, the lanes
folded so every core fits (issue 11). Scripted events on a stopped manual clock."""

from __future__ import annotations

from textual.pilot import Pilot

from tests.scripted_busy import make_busy_app

#: Inside the freeze of the busy scene, with every task spawned.
AT = 6.3


async def _frames(pilot: Pilot[None]) -> None:
    """Two frames: the first sizes the views (the lanes fold to the room they get)."""
    app = pilot.app
    for _ in range(2):
        app._frame()  # type: ignore[attr-defined]
        await pilot.pause()


def test_ten_thousand_tasks_on_sixty_four_cores(snap_compare) -> None:
    app, _ = make_busy_app(AT, tasks=10_000, cores=64, t_end=AT)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_frames)
