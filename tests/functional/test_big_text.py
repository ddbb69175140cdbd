"""The block font: every promised glyph drawn, one height, honest widths, wrapping, fallback."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from cpviz.widgets.big_text import (
    CHARSET,
    GAP,
    GLYPH_HEIGHT,
    LINE_GAP,
    BigText,
    big_lines,
    big_width,
    glyph,
    wrap_big,
)

PROMISED = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?-+×÷/()'\"%&→←≈…"
BLOCKS = set(" ▀▄█")

# Async tests run on anyio's pytest plugin, on asyncio like Textual.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_every_promised_character_has_a_glyph_of_its_own() -> None:
    assert set(PROMISED) <= CHARSET
    box = glyph("☃")
    for ch in set(PROMISED) - {" "}:
        assert glyph(ch) != box, ch
        assert any(c != " " for row in glyph(ch) for c in row), ch


def test_every_glyph_is_the_same_height_and_rectangular() -> None:
    for ch in CHARSET:
        rows = glyph(ch)
        assert len(rows) == GLYPH_HEIGHT, ch
        assert len({len(r) for r in rows}) == 1, ch
        assert set("".join(rows)) <= BLOCKS, ch


def test_glyphs_that_must_differ_do() -> None:
    drawn = {ch: glyph(ch) for ch in CHARSET}
    assert len(set(drawn.values())) == len(drawn)
    assert glyph("0") != glyph("O")


def test_lowercase_uses_the_capitals() -> None:
    assert big_lines("talk") == big_lines("TALK")


def test_unknown_characters_fall_back_sensibly() -> None:
    assert big_lines("é") == big_lines("E")
    assert big_lines("ß") == big_lines("SS")
    assert big_lines("—") == big_lines("-")
    assert big_lines("μs") == big_lines("µS")
    box = glyph("☃")
    assert box == glyph("\u2603") == glyph("𝄞")
    assert box not in {glyph(ch) for ch in CHARSET}


@pytest.mark.parametrize("text", ["A", "IO", "200 MS", "fan-out: 1000 calls", "50% → 2×"])
def test_width_is_glyphs_plus_one_gap_between(text: str) -> None:
    widths = [len(glyph(ch)[0]) for ch in text]
    expected = sum(widths) + GAP * (len(text) - 1)
    assert big_width(text) == expected
    assert all(len(row) == expected for row in big_lines(text))


def test_newline_starts_a_new_band_of_glyphs() -> None:
    rows = big_lines("AB\nC")
    assert len(rows) == 2 * GLYPH_HEIGHT + LINE_GAP
    assert big_width("AB\nC") == big_width("AB")
    assert rows[GLYPH_HEIGHT].strip() == ""
    assert [r.rstrip() for r in rows[-GLYPH_HEIGHT:]] == [r.rstrip() for r in big_lines("C")]


def test_empty_text_has_no_width() -> None:
    assert big_width("") == 0
    assert big_lines("") == [""] * GLYPH_HEIGHT


def test_wrapping_keeps_words_whole_and_lines_within_the_width() -> None:
    text = "the loop froze for two hundred ms"
    width = big_width("the loop froze")
    lines = wrap_big(text, width)
    assert lines is not None
    assert lines[0] == "the loop froze"
    assert " ".join(lines) == text
    assert all(big_width(line) <= width for line in lines)
    assert len(lines) > 1
    # One column less and the first line must give up a word.
    narrower = wrap_big(text, width - 1)
    assert narrower is not None and narrower[0] == "the loop"


def test_wrapping_honours_hard_breaks() -> None:
    assert wrap_big("one\ntwo", 1000) == ["one", "two"]


def test_wrapping_gives_up_when_one_word_does_not_fit() -> None:
    word = "oversubscription"
    assert wrap_big(f"a {word}", big_width(word)) is not None
    assert wrap_big(f"a {word}", big_width(word) - 1) is None


class _Caption(App[None]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield BigText(self.text)


async def test_widget_draws_big_centred_lines_when_they_fit() -> None:
    app = _Caption("GIL")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        widget = app.query_one(BigText)
        assert widget.is_big
        assert widget.size.height == GLYPH_HEIGHT
        shown = [widget.render_line(y).text for y in range(GLYPH_HEIGHT)]
        pad = (40 - big_width("GIL")) // 2
        assert [row.rstrip() for row in shown] == [
            (" " * pad + r).rstrip() for r in big_lines("GIL")
        ]


async def test_widget_wraps_to_its_width() -> None:
    app = _Caption("one two three")
    async with app.run_test(size=(big_width("one two") + 2, 20)) as pilot:
        await pilot.pause()
        widget = app.query_one(BigText)
        assert widget.is_big
        assert widget.size.height == 2 * GLYPH_HEIGHT + LINE_GAP


async def test_widget_falls_back_to_bold_plain_text_when_a_word_is_too_wide() -> None:
    app = _Caption("oversubscription hurts")
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        widget = app.query_one(BigText)
        assert not widget.is_big
        assert widget.size.height == 1
        line = widget.render_line(0)
        assert line.text.strip() == "oversubscription hurts"
        assert any(seg.style is not None and seg.style.bold for seg in line if seg.text.strip())


async def test_widget_follows_its_text() -> None:
    app = _Caption("A")
    async with app.run_test(size=(80, 20)) as pilot:
        widget = app.query_one(BigText)
        widget.text = "A\nB"
        await pilot.pause()
        assert widget.size.height == 2 * GLYPH_HEIGHT + LINE_GAP
        widget.text = ""
        await pilot.pause()
        assert widget.size.height == 0
