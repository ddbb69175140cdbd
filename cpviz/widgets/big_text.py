"""Captions the back row can read: a small block font of our own, drawn with half blocks.

Every glyph is a bitmap five pixels high (a sixth row holds the tails of ``,`` ``;`` ``Q`` and
``µ``). Two pixel rows share one terminal row through the half blocks ``▀ ▄ █``, so a line of big
text is ``GLYPH_HEIGHT`` (3) rows high and every glyph keeps its bitmap's width in columns, with
one blank column between glyphs. Bitmaps rather than hand-drawn block strings keep the font easy
to check and to change: one ``#`` is one pixel.

Lowercase letters use the capitals' glyphs: five pixels leave no room for readable ascenders and
descenders, and capitals read best from far away. A character the font lacks is looked up again
as its capital, then as its base letter (``é`` → ``E``) or a known look-alike (``—`` → ``-``), and
drawn as a hollow box when all of that fails, so a missing glyph is visible rather than silently
dropped.

``BigText`` wraps on spaces to its width and centres each line. When even one word is wider than
the widget it shows the whole text as bold plain text instead, because a big word cut in half is
harder to read than small text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from rich.console import RenderableType
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

#: Terminal rows a line of big text takes (six pixel rows, two per half-block cell).
GLYPH_HEIGHT = 3
#: Blank terminal rows between two wrapped lines of big text.
LINE_GAP = 1
#: Blank columns between two glyphs.
GAP = 1

_PIXEL_ROWS = GLYPH_HEIGHT * 2

# One entry a glyph: rows top to bottom, '#' a lit pixel. Five rows, or six with a tail.
_BITMAPS: dict[str, tuple[str, ...]] = {
    "A": (".##.", "#..#", "####", "#..#", "#..#"),
    "B": ("###.", "#..#", "###.", "#..#", "###."),
    "C": (".###", "#...", "#...", "#...", ".###"),
    "D": ("###.", "#..#", "#..#", "#..#", "###."),
    "E": ("####", "#...", "###.", "#...", "####"),
    "F": ("####", "#...", "###.", "#...", "#..."),
    "G": (".###", "#...", "#.##", "#..#", ".###"),
    "H": ("#..#", "#..#", "####", "#..#", "#..#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..##", "...#", "...#", "#..#", ".##."),
    "K": ("#..#", "#.#.", "##..", "#.#.", "#..#"),
    "L": ("#...", "#...", "#...", "#...", "####"),
    "M": ("#...#", "##.##", "#.#.#", "#...#", "#...#"),
    "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#"),
    "O": (".##.", "#..#", "#..#", "#..#", ".##."),
    "P": ("###.", "#..#", "###.", "#...", "#..."),
    "Q": (".##.", "#..#", "#..#", "#.##", ".##.", "...#"),
    "R": ("###.", "#..#", "###.", "#.#.", "#..#"),
    "S": (".###", "#...", ".##.", "...#", "###."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#..#", "#..#", "#..#", "#..#", ".##."),
    "V": ("#...#", "#...#", ".#.#.", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#.#.#", "##.##", "#...#"),
    "X": ("#...#", ".#.#.", "..#..", ".#.#.", "#...#"),
    "Y": ("#...#", ".#.#.", "..#..", "..#..", "..#.."),
    "Z": ("####", "...#", ".##.", "#...", "####"),
    # Digits are square and narrower than the round O, so 0 and O differ at a glance.
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    " ": ("..", "..", "..", "..", ".."),
    ".": (".", ".", ".", ".", "#"),
    ",": ("..", "..", "..", "..", ".#", "#."),
    ":": (".", "#", ".", "#", "."),
    ";": ("..", ".#", "..", "..", ".#", "#."),
    "!": ("#", "#", "#", ".", "#"),
    "?": ("###", "..#", ".##", "...", ".#."),
    "-": ("...", "...", "###", "...", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."),
    "×": ("...", "#.#", ".#.", "#.#", "..."),
    "÷": (".#.", "...", "###", "...", ".#."),
    "=": ("...", "###", "...", "###", "..."),
    "<": ("..#", ".#.", "#..", ".#.", "..#"),
    ">": ("#..", ".#.", "..#", ".#.", "#.."),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
    "(": (".#", "#.", "#.", "#.", ".#"),
    ")": ("#.", ".#", ".#", ".#", "#."),
    "[": ("##", "#.", "#.", "#.", "##"),
    "]": ("##", ".#", ".#", ".#", "##"),
    "'": ("#", "#", ".", ".", "."),
    '"': ("#.#", "#.#", "...", "...", "..."),
    "*": ("#.#", ".#.", "#.#", "...", "..."),
    "_": ("...", "...", "...", "...", "###"),
    "#": (".#.#.", "#####", ".#.#.", "#####", ".#.#."),
    "%": ("#...#", "...#.", "..#..", ".#...", "#...#"),
    "&": (".##.", "#..#", ".##.", "#.#.", ".#.#"),
    "→": ("..#..", "...#.", "#####", "...#.", "..#.."),
    "←": ("..#..", ".#...", "#####", ".#...", "..#.."),
    "≈": (".#.#", "#.#.", ".#.#", "#.#.", "...."),
    "…": (".....", ".....", ".....", ".....", "#.#.#"),
    "µ": ("....", "#..#", "#..#", "#..#", "###.", "#..."),
    # Drawn for characters the font lacks: hollow, and wider than any digit, so it is not a 0.
    "\ufffd": ("####", "#..#", "#..#", "#..#", "####"),
}

#: Characters that borrow another glyph: typographic look-alikes and the Greek mu.
_ALIASES: dict[str, str] = {
    "—": "-",
    "–": "-",
    "−": "-",
    "‐": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "μ": "µ",
    "⋅": ".",
    "·": ".",
    "\t": " ",
    "\u00a0": " ",
}

#: Every character the font draws with a glyph of its own (the box excluded).
CHARSET: frozenset[str] = frozenset(_BITMAPS) - {"\ufffd"}
_BOX = "\ufffd"


def _cells(bitmap: tuple[str, ...]) -> tuple[str, ...]:
    """Fold pairs of pixel rows into rows of half blocks."""
    width = len(bitmap[0])
    rows = [*bitmap, *(["." * width] * (_PIXEL_ROWS - len(bitmap)))]
    half = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    return tuple(
        "".join(half[top[x] == "#", bottom[x] == "#"] for x in range(width))
        for top, bottom in zip(rows[0::2], rows[1::2], strict=True)
    )


_GLYPHS: dict[str, tuple[str, ...]] = {ch: _cells(bitmap) for ch, bitmap in _BITMAPS.items()}


@lru_cache(maxsize=512)
def _glyph_keys(ch: str) -> tuple[str, ...]:
    """The glyphs that draw one character: itself, its capital, a look-alike, its base, or a box."""
    if ch in _GLYPHS:
        return (ch,)
    if ch in _ALIASES:
        return (_ALIASES[ch],)
    upper = ch.upper()
    if upper != ch and all(c in _GLYPHS for c in upper):
        return tuple(upper)  # ß → SS
    base = unicodedata.normalize("NFKD", ch)
    letters = "".join(c for c in base if not unicodedata.combining(c)).upper()
    if letters and letters != ch and all(c in _GLYPHS for c in letters):
        return tuple(letters)  # é → E
    if ch.isspace():
        return (" ",)
    return (_BOX,)


def _keys(text: str) -> list[str]:
    return [key for ch in text for key in _glyph_keys(ch)]


def glyph(ch: str) -> tuple[str, ...]:
    """The ``GLYPH_HEIGHT`` rows that draw one character (several glyphs side by side for ß)."""
    return tuple(big_lines(ch))


def big_width(text: str) -> int:
    """Columns ``big_lines(text)`` takes: the widest of its lines (``\\n`` starts a new line)."""
    return max(_line_width(line) for line in text.split("\n"))


def _line_width(line: str) -> int:
    keys = _keys(line)
    if not keys:
        return 0
    return sum(len(_GLYPHS[k][0]) for k in keys) + GAP * (len(keys) - 1)


def big_lines(text: str) -> list[str]:
    """Draw text in the block font: ``GLYPH_HEIGHT`` rows per line, all ``big_width`` wide.

    A ``\\n`` starts a new line of glyphs, ``LINE_GAP`` blank rows below the last.
    """
    width = big_width(text)
    out: list[str] = []
    for n, line in enumerate(text.split("\n")):
        if n:
            out.extend([" " * width] * LINE_GAP)
        keys = _keys(line)
        for row in range(GLYPH_HEIGHT):
            drawn = (" " * GAP).join(_GLYPHS[k][row] for k in keys)
            out.append(drawn.ljust(width))
    return out


def wrap_big(text: str, width: int) -> list[str] | None:
    """Lines of text (not yet drawn) that fit ``width`` columns in big glyphs, or None.

    Words are kept whole and wrapped on spaces; ``\\n`` always breaks. None means some word alone
    is wider than ``width``, and the caller should fall back to plain text.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            if _line_width(word) > width:
                return None
            candidate = f"{current} {word}" if current else word
            if _line_width(candidate) <= width:
                current = candidate
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines


class BigText(Widget):
    """Text in the block font, wrapped to the widget's width and centred.

    Falls back to bold plain text (also centred and wrapped) when one word alone does not fit;
    ``is_big`` says which of the two the last render used.
    """

    DEFAULT_CSS = """
    BigText {
        height: auto;
        width: 1fr;
        color: $foreground;
    }
    """

    text: reactive[str] = reactive("", layout=True)
    """What to show; ``\\n`` forces a line break."""

    max_rows: reactive[int | None] = reactive(None, layout=True)
    """Most rows the big letters may take; past that the text is shown plain (short screens)."""

    def __init__(
        self,
        text: str = "",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(BigText.text, text)
        self.is_big = True

    def _plan(self, width: int) -> list[str] | None:
        """Rows of big text centred in ``width``, or None for the plain fallback."""
        if not self.text.strip():
            return []
        lines = wrap_big(self.text, max(width, 0))
        if lines is None:
            return None
        rows: list[str] = []
        for n, line in enumerate(lines):
            if n:
                rows.extend([""] * LINE_GAP)
            drawn = big_lines(line)
            pad = (width - big_width(line)) // 2
            rows.extend((" " * pad + row).rstrip() for row in drawn)
        if self.max_rows is not None and len(rows) > self.max_rows:
            return None
        return rows

    def _plain(self) -> Text:
        return Text(self.text, style="bold", justify="center")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return big_width(self.text)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        rows = self._plan(width)
        if rows is not None:
            return len(rows)
        return len(self._plain().wrap(self.app.console, max(width, 1)))

    def render(self) -> RenderableType:
        width = self.content_size.width
        rows = self._plan(width)
        self.is_big = rows is not None
        if rows is None:
            return self._plain()
        return Text("\n".join(rows), no_wrap=True, overflow="crop")
