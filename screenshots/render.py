"""Draw the README's screenshots from the recordings in ``tests/fixtures``.

    python screenshots/render.py

Each picture is a recording replayed paused at a named moment (see ``cpviz.screenshot``), so
drawing them again changes nothing unless the screen itself changed. One picture is the same
as ``cpviz screenshot tests/fixtures/NAME.jsonl.gz screenshots/OUT.svg --at MOMENT``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpviz.screenshot import render  # noqa: E402

SIZE = (120, 40)
#: (output name, fixture, moment)
SHOTS: tuple[tuple[str, str, str], ...] = (
    ("alarm", "blocking", "incident"),
    ("io", "io", "end"),
    ("hashlib", "cpu-hashlib", "mid"),
    ("gil-threads", "cpu-python", "mid"),
    ("pipeline", "pipeline", "mid"),
    ("deadlock", "deadlock", "stall"),
    ("amdahl", "amdahl", "end"),
    ("server-loop", "server-loop", "mid"),
)


async def main() -> None:
    for out, fixture, at in SHOTS:
        svg = await render(ROOT / "tests" / "fixtures" / f"{fixture}.jsonl.gz", at, SIZE)
        path = ROOT / "screenshots" / f"{out}.svg"
        changed = not path.exists() or path.read_text(encoding="utf-8") != svg
        if changed:
            path.write_text(svg, encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {'written' if changed else 'unchanged'}")


if __name__ == "__main__":
    asyncio.run(main())
