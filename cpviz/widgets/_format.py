"""Small text helpers the widgets share, so every view spells numbers and paths the same way."""

from __future__ import annotations

import math
import os

#: Eighth-block glyphs, lowest first: one cell can show nine levels (blank plus these eight).
LEVELS = "▁▂▃▄▅▆▇█"


def level_glyph(fraction: float) -> str:
    """The block glyph for ``fraction`` of full height; anything above zero shows at least ▁."""
    if fraction <= 0.0:
        return LEVELS[0]
    return LEVELS[min(len(LEVELS) - 1, max(0, math.ceil(fraction * len(LEVELS)) - 1))]


def fmt_seconds(seconds: float) -> str:
    """Durations from microseconds to minutes, in the unit a person reads fastest."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms" if seconds < 0.1 else f"{seconds:.2f} s"
    if seconds < 100.0:
        return f"{seconds:.2f} s" if seconds < 10.0 else f"{seconds:.1f} s"
    return f"{seconds:.0f} s"


def fmt_window(seconds: float) -> str:
    """A timeline window as a short label: ``250 ms``, ``5 s``, ``1 min``."""
    if seconds < 1.0:
        return f"{seconds * 1000:g} ms"
    if seconds >= 60.0 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def fmt_count(n: float) -> str:
    """Counts that may run to the thousands, in at most five cells."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1e6:.1f}M"


#: Where a path's interesting part starts when it is not below the working directory: an
#: installed package, or cpviz's own code (a recording may come from another machine).
_ANCHORS = ("/site-packages/", "/dist-packages/", "/cpviz/workloads/", "/cpviz/engine/",
            "/examples/")


def rel_path(path: str) -> str:
    """``path`` short: relative to the working directory when it lies below it, else from the
    package it belongs to, so culprits read the same wherever cpviz or a replay runs."""
    if not os.path.isabs(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = ".."
    if not rel.startswith(".."):
        return rel
    posix = path.replace(os.sep, "/")
    for anchor in _ANCHORS:
        at = posix.rfind(anchor)
        if at >= 0:
            keep = at + len(anchor) if "-packages/" in anchor else at + 1
            return posix[keep:]
    return path


def trim(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells, marking the cut with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"
