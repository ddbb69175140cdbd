"""Capture screenshots/*.svg from a live cpviz session on this machine.

Unlike the snapshot tests (scripted data, manual clock), these are real measurements: the
lab runs the workloads, and each picture is saved at the moment it shows what its caption
claims (for the alarm, while the loop is actually frozen). Run from the repository root:

    .venv/bin/python screenshots/capture.py
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from cpviz.app import CpvizApp
from cpviz.engine.lab import Lab, LabController
from cpviz.engine.source import LiveSource

OUT = Path(__file__).resolve().parent


async def _until(check: Callable[[], bool], limit_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        if loop.time() > deadline:
            raise SystemExit("screenshot condition not reached in time")
        await asyncio.sleep(0.02)


async def capture(size: tuple[int, int]) -> None:
    lab = Lab().start()
    app = CpvizApp(LiveSource(lab.stream, lab.cores), LabController(lab))
    try:
        async with app.run_test(size=size) as pilot:
            # The blocking workload, pictured during its second freeze, so the first freeze and
            # the tickers' rhythm around it are on the timeline too.
            await pilot.press("3")
            await _until(
                lambda: len(app.model.incidents) >= 2 and app.model.open_incident is not None, 15
            )
            await asyncio.sleep(0.15)
            app.save_screenshot(str(OUT / "alarm.svg"))
            await _until(lambda: len(app.model.results) >= 1, 30)
            await pilot.press("1")  # the I/O fan-out, then CPU work in threads
            await _until(lambda: len(app.model.results) >= 2, 30)
            await pilot.press("2")
            await _until(lambda: len(app.model.results) >= 3, 60)
            await asyncio.sleep(0.3)
            app.save_screenshot(str(OUT / "results.svg"))
            await pilot.press("q")
    finally:
        lab.close()


def main() -> int:
    asyncio.run(capture((120, 40)))
    print(f"wrote {OUT / 'alarm.svg'} and {OUT / 'results.svg'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
