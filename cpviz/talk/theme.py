"""The talk-mode theme: colours that survive a washed-out projector.

Projectors lose dark greys and pastel tints first, so this theme keeps a pure black background,
pure white text at full strength, and a few fully saturated colours that stay apart from one
another even when the image is dim or the room is bright.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.theme import Theme

HIGH_CONTRAST_NAME = "cpviz-high-contrast"

HIGH_CONTRAST = Theme(
    name=HIGH_CONTRAST_NAME,
    primary="#2F9BFF",
    secondary="#00E5FF",
    accent="#FFD700",
    warning="#FF9900",
    error="#FF2D2D",
    success="#22E622",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1C1C1C",
    boost="#FFFFFF10",
    dark=True,
    # Text drawn at reduced opacity turns grey on a projector; keep it solid.
    text_alpha=1.0,
)

#: Themes ``t`` cycles through in talk mode, after the high-contrast one (if Textual has them).
FALLBACK_THEMES: tuple[str, ...] = ("textual-dark", "textual-light")


def register_talk_themes(app: App[Any]) -> list[str]:
    """Register the talk themes on ``app``; return the names to cycle through, default first."""
    app.register_theme(HIGH_CONTRAST)
    available = app.available_themes
    return [HIGH_CONTRAST_NAME, *(name for name in FALLBACK_THEMES if name in available)]


def next_theme(names: list[str], current: str) -> str:
    """The theme after ``current`` in ``names``, wrapping round (the first if it is not there)."""
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]
