"""Command-line values with a range: one parser for every number an option takes, so each
refusal reads the same (what was expected, and the range accepted)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def bounded(low: float, high: float, *, unit: str = "", noun: str = "a number"
            ) -> Callable[[str], float]:
    """An argparse ``type`` taking a float from ``low`` to ``high`` (``unit`` shown after)."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not low <= value <= high:  # NaN fails this too
            raise argparse.ArgumentTypeError(
                f"must be from {low:g} to {high:g}{suffix}, got {text}")
        return value

    return parse


#: ``--duration``: how long a headless run or connection lasts.
duration = bounded(0.1, 86_400, unit="s", noun="seconds")
