"""Every key, with what it does, one line each."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

#: (keys, explanation) in the order a newcomer needs them.
KEYS: tuple[tuple[str, str], ...] = (
    ("1 – 9, 0", "select workload N; start it with its mode, or stop it if it is running"),
    ("m", "cycle the selected workload's mode (serial, concurrent, threads ...)"),
    ("r", "toggle real / simulated for the selected workload, if it has a real mode"),
    ("[ ]  { }", "step the selected workload's live parameters down / up while it runs"),
    ("c", "pin the lab and its workers to one core, and back to all"),
    ("space", "pause or resume the display (a replay: pause or play); nothing is lost"),
    ("← →", "paused or replaying: step back / forward through the history"),
    ("n  N", "paused or replaying: jump to the next / previous freeze or stall"),
    ("<  >  g", "replaying: slower / faster (¼× to 8×), and seek to a typed moment"),
    ("+  =  -", "zoom the timeline in (shorter window) and out"),
    ("↑ ↓ PgUp PgDn", "scroll the task rows of the timeline, or use the mouse"),
    ("t", "measured sweeps and latency: a chart, or their numbers as a table"),
    ("o", "show or hide your program's own output (cpviz -- python app.py)"),
    ("i", "show or hide cpviz's own tasks and threads (hidden at first)"),
    ("?", "show or hide this help"),
    ("q  ctrl+c", "quit: stops every run and releases threads and processes"),
)

LEGEND = (
    "Timeline: █ running  ╂ ran briefly  ▒ ready but not running  ─ waiting  ▓ frozen\n"
    "Cores: bar height is the OS's busy %, colour is whose work it was (loop, thread, process)\n"
    "Alarm: flashes while the event loop is frozen and names the file:line that froze it;\n"
    "       NO PROGRESS when tasks wait on each other and nothing will wake them\n"
    "Measured: gauges, phases and sweeps of the selected workload's run, on the timeline's axis;\n"
    "       charts draw a measurement as bars █ and a second figure or a law's theory as dots ⠒⠒"
)


class HelpScreen(ModalScreen[None]):
    """Modal, so the live view keeps updating underneath and is there again on close."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close", show=False),
        Binding("q", "close", "close", show=False),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > Vertical {
            width: 100%;
            max-width: 112;
            overflow-y: auto;
            height: auto;
            max-height: 100%;
            border: round $primary;
            background: $surface;
            padding: 0 1;
        }
        & #legend { color: $text-muted; margin-top: 1; width: 1fr; }
        & #keys { width: 1fr; }
    }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, text in KEYS:
            table.add_row(keys, text)
        with Vertical() as box:
            box.border_title = "cpviz keys"
            box.border_subtitle = "escape, ? or q to close"
            yield Static(table, id="keys")
            yield Static(LEGEND, id="legend")

    def action_close(self) -> None:
        self.dismiss(None)
