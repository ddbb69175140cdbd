"""Threads and processes of the observed program as rows on the timeline's axis, read from the
OS: running (the bar's height is the share of the column it ran; its colour is the core),
runnable but waiting for a CPU, waiting in a futex while a sibling ran (the GIL, or a lock), or
waiting. Pure-Python threads take turns here; hashlib threads and worker processes do not."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip

from cpviz.engine.osrows import Cell, RowInfo, Store
from cpviz.widgets._format import level_glyph, trim
from cpviz.widgets._line_view import LineView
from cpviz.widgets.axis import LABEL_W, Axis

#: The border's key to the glyphs.
LEGEND = "▁█ ran (colour: core)  ▒ waits for a CPU  ░ gil? (futex while a sibling ran)  ─ waits"
#: Below this share of a column a thread counts as not having run in it.
RAN = 0.125
#: Colours of the cores a thread ran on, by core number (wrapping around).
CORE_COLOURS = ("green", "cyan", "bright_magenta", "bright_blue", "bright_green", "yellow",
                "bright_cyan", "magenta")
#: Roles shown first, and the roles of cpviz's own threads (shown only on request).
ORDER = {"loop": 0, "thread": 1, "other": 2, "": 2, "server": 3, "process": 4, "probe": 5}
OWN = frozenset({"probe", "ui"})

#: A column as drawn: glyph and component name ("core3" for running on core 3).
Look = tuple[str, str]
#: A row as drawn: runs of equal columns, as (glyph, component, count); an idle row is one run.
Runs = tuple[tuple[str, str, int], ...]


def runs_of(looks: tuple[Look, ...]) -> Runs:
    """Equal neighbours merged: a row draws one segment per run, not one per column."""
    out: list[tuple[str, str, int]] = []
    for glyph, part in looks:
        if out and out[-1][0] == glyph and out[-1][1] == part:
            out[-1] = (glyph, part, out[-1][2] + 1)
        else:
            out.append((glyph, part, 1))
    return tuple(out)


def look(cell: Cell | None) -> Look:
    """How one column of a row is drawn; running wins whenever it took a visible share."""
    if cell is None or cell.covered <= 0:
        return " ", "none"
    if cell.running >= RAN:
        return level_glyph(cell.running), f"core{max(cell.core, 0)}"
    rest = max(("runnable", cell.runnable), ("gil", cell.gil), ("waiting", cell.waiting),
               key=lambda kv: kv[1])
    return {"runnable": "▒", "gil": "░", "waiting": "─"}[rest[0]], rest[0]


def visible_rows(infos: list[RowInfo], show_own: bool = False) -> list[RowInfo]:
    """The rows to draw, loop first, then worker threads, other threads and processes (the
    view then lifts the ones that ran in its window above the rest)."""
    rows = [i for i in infos if show_own or i.role not in OWN]
    return sorted(rows, key=lambda i: (ORDER.get(i.role, 3), i.key[1]))


class OsRows(LineView):
    """One line per thread or process, drawn from the store the viewer's sampler fills."""

    COMPONENT_PREFIX = "os-rows"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "os-rows--label", "os-rows--none", "os-rows--runnable", "os-rows--gil",
        "os-rows--waiting", "os-rows--note",
    }

    #: Unscoped, so the screen's height classes below reach it.
    SCOPED_CSS = False
    DEFAULT_CSS = """
    /* Short screens give the room to the timeline; normal ones show a few rows, scrolled. */
    Screen.-short OsRows { display: none; }
    Screen.-normal OsRows { max-height: 5; }
    OsRows {
        height: auto;
        max-height: 9;
        border: round $primary-darken-1;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        & > .os-rows--label { color: $text; }
        & > .os-rows--note { color: $text-muted; }
        & > .os-rows--waiting { color: $primary-lighten-1 70%; }
        & > .os-rows--runnable { color: ansi_bright_yellow; }
        & > .os-rows--gil { color: $error-lighten-2; }
    }
    """

    def __init__(self, store: Store | None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.now = 0.0
        self.window_s = 5.0
        self.axis_width: int | None = None
        #: cpviz's own threads (watchdog, streamer) are left out unless this is set.
        self.show_own = False
        self._rows: list[RowInfo] = []
        self._lines: list[Runs] = []
        self._frame_key: tuple[object, ...] | None = None
        #: Nothing in view ran: the picture moves only when a sample comes (idle: 10 a second),
        #: not with every column the axis moves by.
        self._quiet = False
        self._title = ""
        #: Columns already complete (the sampler is past their end), by row: they never change.
        self._done: dict[tuple[str, int], dict[int, Look]] = {}
        self._done_step = 0.0

    def on_mount(self) -> None:
        self.border_subtitle = LEGEND
        self.border_title = "threads and processes, from the OS"

    def show(self, now: float, window_s: float, axis_width: int | None = None) -> None:
        """Take a frame's display time and the timeline's window and content width."""
        self.now, self.window_s, self.axis_width = now, window_s, axis_width
        store = self.store
        if not self.is_mounted or store is None:
            return
        width = self._content_size().width
        axis = Axis.of(min(width, axis_width or width), window_s, now)
        # Nothing drawn can change unless a column or a sample came, or the view moved.
        frame_key = (self._content_size(), axis.step, None if self._quiet else axis.last,
                     store.n, store.version, self.scroll_offset.y, self.show_own)
        if frame_key == self._frame_key:
            return
        self._frame_key = frame_key
        start = axis.first * axis.step
        rows = [r for r in visible_rows(store.infos(), self.show_own)
                if store.alive_since(r.key, start)]
        lines = [runs_of(self._looks(store, r, axis)) for r in rows]
        ran = [any(part.startswith("core") for _g, part, _n in line) for line in lines]
        # The rows that ran in the window first (the box shows a few), each group in order.
        order = sorted(range(len(rows)), key=lambda i: not ran[i])
        self._rows = [rows[i] for i in order]
        self._lines = [lines[i] for i in order]
        self._quiet = not any(ran)
        self._set_virtual_size(Size(width, max(1, len(rows))))
        notes = {r.note for r in rows if r.note}
        title = (f"{len(rows)} threads and processes, from the OS"
                 + (f" · {'; '.join(sorted(notes))}" if notes else ""))
        if title != self._title:
            self._title = title
            self.border_title = title
        top = self.scroll_offset.y
        dirty: list[int] = []
        for y in range(self._content_size().height):
            key = self._key(top + y, width)
            self._update_line(y, key, partial(self._line, key, width), dirty)
        self._refresh_lines(dirty)

    def _looks(self, store: Store, row: RowInfo, axis: Axis) -> tuple[Look, ...]:
        """A row's columns: the complete ones from cache, the rest read from the store."""
        if axis.step != self._done_step:
            self._done_step = axis.step
            self._done.clear()
        done = self._done.setdefault(row.key, {})
        first = axis.first
        c = first
        while c <= axis.last and c in done:
            c += 1
        recent: dict[int, Look] = {}
        if c <= axis.last:
            latest = store.latest()
            cells = store.columns(row.key, c * axis.step, axis.step, axis.last - c + 1)
            for i, cell in enumerate(cells, start=c):
                # Complete once the sampler is past its end; the newest ones may still change.
                (done if (i + 1) * axis.step <= latest else recent)[i] = look(cell)
        if len(done) > 4 * axis.ncols:
            for k in [k for k in done if k < first]:
                del done[k]
        return tuple(done.get(i) or recent.get(i) or (" ", "none")
                     for i in range(first, axis.last + 1))

    def _key(self, index: int, width: int) -> tuple[object, ...]:
        if self.store is None:
            return (width, "none")
        if not 0 <= index < len(self._rows):
            return (width, "empty" if self._rows else "idle")
        info = self._rows[index]
        return (width, info.label, info.note, self._lines[index])

    def _line(self, key: tuple[object, ...], width: int) -> Strip:
        if len(key) == 2:
            text = {"none": "no OS view here: a recording keeps no thread rows",
                    "idle": "no thread or process of the observed program yet",
                    "empty": ""}[str(key[1])]
            return Strip([Segment(trim(text, width).ljust(width), self._style("note"))])
        _w, label, note, looks = key
        name = trim(str(label) + (" ?" if note else ""), LABEL_W - 1).ljust(LABEL_W)
        segments = [Segment(name, self._style("label"))]
        for glyph, part, count in looks:  # type: ignore[attr-defined]
            segments.append(Segment(glyph * count, self._look_style(part)))
        return Strip(segments).crop(0, width).extend_cell_length(width)

    def _look_style(self, part: str) -> Style:
        if part.startswith("core"):
            return Style(color=CORE_COLOURS[int(part[4:]) % len(CORE_COLOURS)])
        return self._style(part) if part != "none" else Style()

    def render_line(self, y: int) -> Strip:
        width = self._content_size().width
        key = self._key(self.scroll_offset.y + y, width)
        return self._painted_line(y, key, self._line(key, width))
