"""Workloads to start, what each demonstrates, runs in progress and what finished runs measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.events import RunResult
from cpviz.engine.model import Model, RunView
from cpviz.widgets._format import fmt_seconds, trim

#: Finished runs listed, newest last.
RESULTS_SHOWN = 5
#: Cells of a progress bar.
BAR_W = 14


@dataclass(frozen=True)
class WorkloadChoice:
    """What the app has chosen for one workload; compared by value, so unchanged means no redraw."""

    info: WorkloadInfo
    #: Mode the next start will use.
    mode: str
    #: The ``real`` parameter, or None if the workload has none.
    real: bool | None
    #: Whether the controller reports a run of it in progress.
    running: bool
    #: Live parameters and the values the app holds for them (sent to a run as they change).
    live: tuple[tuple[str, Any], ...] = ()


def run_label(workload: str, mode: str, params: tuple[tuple[str, Any], ...]) -> str:
    """``io:concurrent (sim)`` or ``io:concurrent (real)`` where the workload can be either:
    a simulated run and a real one measure different things and must not read the same."""
    real = dict(params).get("real")
    if real is None:
        return f"{workload}:{mode}"
    return f"{workload}:{mode} ({'real' if real else 'sim'})"


def outcome_word(outcome: str) -> str:
    """One short word for a run's outcome, so the table stays narrow."""
    if outcome == "completed":
        return "ok"
    if outcome == "stopped":
        return "stop"
    return "fail" if outcome.startswith("failed") else trim(outcome, 6)


def results_table(results: list[RunResult]) -> Table:
    """The last runs' measured figures: wall, CPU, parallelism (CPU ÷ wall) and speedup."""
    table = Table(box=None, padding=(0, 1, 0, 0), header_style="dim", expand=False)
    table.add_column("run", no_wrap=True, overflow="ellipsis", max_width=22)
    table.add_column("wall", justify="right", no_wrap=True)
    table.add_column("cpu", justify="right", no_wrap=True)
    table.add_column("par", justify="right", no_wrap=True)
    table.add_column("spd", justify="right", no_wrap=True)
    table.add_column("inc", justify="right", no_wrap=True)
    table.add_column("end", no_wrap=True)
    for r in results:
        speedup = "—" if r.speedup is None else f"{r.speedup:.1f}×"
        end = outcome_word(r.outcome)
        table.add_row(
            run_label(r.workload, r.mode, r.params),
            fmt_seconds(r.wall_s).replace(" ", ""),
            fmt_seconds(r.cpu_s).replace(" ", ""),
            f"{r.parallelism:.2f}×",
            speedup,
            str(len(r.incidents)),
            Text(end, style="red" if end == "fail" else ""),
        )
    return table


#: The figures under their full names, each as wide as its header or its widest value.
FIGURES = (("wall", 7), ("CPU", 7), ("parallelism", 11), ("speedup", 7), ("freezes", 7))
#: Cells the full layout needs: the figures, then the outcome (at most six letters).
FULL_W = sum(w + 1 for _, w in FIGURES) + len("outcome")


def results_full(results: list[RunResult]) -> Text:
    """The last runs, each its name on a line and its figures under full headers.

    A panel too narrow for a name and every figure on one line cut the values and shortened
    the headers to "par spd inc"; two lines per run keep both whole at 120 columns.
    """
    out = Text(no_wrap=True, overflow="ellipsis")
    for name, w in FIGURES:  # words apart from their padding, as the values below
        out.append(" " * (w - len(name)))
        out.append(name, "dim")
        out.append(" ")
    out.append("outcome", "dim")
    for r in results:
        values = (
            fmt_seconds(r.wall_s).replace(" ", ""),
            fmt_seconds(r.cpu_s).replace(" ", ""),
            f"{r.parallelism:.2f}×",
            "—" if r.speedup is None else f"{r.speedup:.1f}×",
            str(len(r.incidents)),
        )
        end = outcome_word(r.outcome)
        out.append("\n" + run_label(r.workload, r.mode, r.params), Style(bold=True))
        out.append("\n")
        for value, (_, w) in zip(values, FIGURES, strict=True):
            # Padding styled apart from the value, so an SVG export places each value at its
            # own x: a run holding "×" or "—" drifts off the grid under a fallback font.
            out.append(" " * (w - len(value)), "dim")
            out.append(value)
            out.append(" ", "dim")
        out.append(end, "red" if end == "fail" else "")
        seen = os_figures(r)
        if seen:
            out.append("\n" + seen, "dim")
    return out


def os_figures(r: RunResult) -> str:
    """What the OS saw of the run's workers (read from outside), or "" where nothing was:
    the share of time two or more ran at once, and the time they waited for a CPU."""
    extra = dict(r.extra)
    if extra.get("simultaneous") is None:
        return ""
    return (f"{extra['simultaneous']:.0%} of the time 2+ workers ran at once · "
            f"waited for a CPU {fmt_seconds(float(extra.get('cpu_wait_s') or 0.0))}")


def progress_line(run: RunView, now: float) -> Text:
    """``workload:mode  ██████░░░░  23/40`` drawn with Rich, so nothing animates on its own."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(run_label(run.workload, run.mode, run.params) + " ", Style(bold=True))
    if run.total > 0:
        filled = round(BAR_W * min(1.0, run.done / run.total))
        text.append("█" * filled, "green")
        text.append("░" * (BAR_W - filled), "dim")
        text.append(f" {run.done}/{run.total}")
    else:
        text.append(f"running {fmt_seconds(max(0.0, now - run.start))}", "dim")
    return text


def _mode_label(choice: WorkloadChoice) -> str:
    mode = choice.mode
    if choice.real is not None:
        mode += "·real" if choice.real else "·sim"
    return mode


def listing(choices: tuple[WorkloadChoice, ...], selected: int, width: int) -> Text:
    """Every workload with its key and next mode; in columns when there are many.

    Three columns from 72 cells on, so nine workloads take three lines and the timeline keeps
    the rest. Where a column is too narrow for its mode, the entry keeps its key and whole name
    and drops the mode, and one line below gives the selected workload's mode: none is ever cut
    or hidden.
    """
    many = len(choices) > 5
    cols = 3 if many and width >= 72 else (2 if many and width >= 30 else 1)
    cell = max(10, (width - (cols - 1)) // cols) if width > 0 else 40
    rows = (len(choices) + cols - 1) // cols
    out = Text(no_wrap=True, overflow="ellipsis")
    dropped = False
    for r in range(rows):
        for c in range(cols):
            i = c * rows + r
            if i >= len(choices):
                continue
            choice = choices[i]
            is_sel = i == selected
            key = str(i + 1) if i < 9 else "0"
            entry = Text(no_wrap=True, overflow="ellipsis")
            entry.append(f"{'▶' if is_sel else ' '}{key} {choice.info.key} ",
                         Style(bold=True, reverse=is_sel))
            mark = " ●" if choice.running else ""
            mode = _mode_label(choice)
            if cols > 1 and entry.cell_len + len(mode) + len(mark) > cell:
                dropped = True
                entry.rstrip()
            else:
                entry.append(mode, Style(reverse=is_sel))
            entry.truncate(cell - len(mark), overflow="ellipsis")
            entry.append(mark, "bold green")
            if c < cols - 1 and c * rows + r + rows < len(choices):
                entry.pad_right(cell - entry.cell_len + 1)
            out.append_text(entry)
        if r < rows - 1:
            out.append("\n")
    if dropped and 0 <= selected < len(choices):
        choice = choices[selected]
        out.append(f"\n▶ {choice.info.key}: ", Style(bold=True))
        out.append(_mode_label(choice))
        out.append("  (m: mode)", "dim")
    return out


class RunPanel(VerticalScroll, can_focus=False):
    """Composed of plain Statics; each is updated only when its own text would change."""

    DEFAULT_CSS = """
    RunPanel {
        height: 1fr;
        & > Static { width: 1fr; height: auto; }
        & > #explain { color: $text-muted; margin-top: 1; }
        & > #active { margin-top: 1; }
        & > #dropped { color: $warning; }
    }
    """

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        #: Every workload, in key order, with the mode and real/sim the next start will use.
        self.choices: tuple[WorkloadChoice, ...] = ()
        #: Index into ``choices`` that ``m``, ``r`` and the explanation refer to.
        self.selected = 0
        #: Display time, for the elapsed time of runs with no known total.
        self.now = 0.0
        self._shown: dict[str, object] = {}
        self._lines: dict[str, int] = {}
        self._key: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        # Measured things first; the explanation is long and may scroll.
        yield Static(id="workloads")
        yield Static(id="active")
        yield Static(id="results")
        yield Static(id="dropped")
        yield Static(id="explain")

    def on_mount(self) -> None:
        self.border_title = "workloads"
        self._update_all()

    def show(self, now: float, choices: tuple[WorkloadChoice, ...], selected: int) -> None:
        """Take a frame's state; rebuild the texts only when something they show has changed.

        The key is cheap (narrow Model versions, not ``model.version``, which bumps with every
        core sample); each Static is then updated only if its own text differs.
        """
        self.now, self.choices, self.selected = now, choices, selected
        model = self.model
        # Only runs with no known total show a clock; it reads to a tenth of a second.
        elapsed = tuple(
            round(now - r.start, 1) for r in model.runs.values() if r.end is None and r.total <= 0
        )
        # The width too: the results' layout depends on it.
        key = (choices, selected, model.runs_version, model.dropped, elapsed,
               self.size.width)
        if key != self._key:
            self._key = key
            self._update_all()

    def _set(
        self, widget_id: str, signature: object, content: RenderableType | str,
        lines: int | None = None,
    ) -> None:
        """Update one Static, only when what it shows has changed.

        ``lines``, when known, is how many lines the content takes: while that stays the same
        the screen needs no new layout, only this Static repainted.
        """
        if not self.is_mounted or self._shown.get(widget_id) == signature:
            return
        # Gone while the app shuts down (a resize then still reaches show): nothing to update.
        static = next(self.query(f"#{widget_id}").results(Static), None)
        if static is None:
            return
        self._shown[widget_id] = signature
        same_height = lines is not None and self._lines.get(widget_id) == lines
        if lines is not None:
            self._lines[widget_id] = lines
        static.update(content, layout=not same_height)

    def _update_all(self) -> None:
        if not self.is_mounted:
            return
        choices = self.choices
        selected = min(self.selected, len(choices) - 1) if choices else -1

        width = self.scrollable_content_region.width
        self._set("workloads", (choices, selected, width), listing(choices, selected, width))

        if 0 <= selected < len(choices):
            choice = choices[selected]
            modes = " ".join(f"[{m}]" if m == choice.mode else m for m in choice.info.modes)
            explain = Text()
            explain.append(f"{choice.info.title}: ", Style(bold=True))
            explain.append(choice.info.explanation)
            # While it runs, a new mode waits for the next start: the label says so.
            later = " for the next run" if choice.running else ""
            explain.append(f"\nm cycles modes{later}: {modes}", Style(dim=True))
            if choice.live:
                keys = ("[ ]", "{ }")
                explain.append(
                    "\nlive: " + "  ".join(
                        f"{keys[i]} {name}={value:g}" if isinstance(value, float)
                        else f"{keys[i]} {name}={value}"
                        for i, (name, value) in enumerate(choice.live[:2])
                    ),
                    Style(bold=True),
                )
            self._set("explain", (choice.info, choice.mode, choice.live, choice.running),
                      explain)
        else:
            self._set("explain", None, "no workloads")

        runs = self.model.active_runs()
        now = self.now
        active_sig = tuple(
            (r.run_id, r.done, r.total, round(now - r.start, 1) if r.total <= 0 else 0)
            for r in runs
        )
        # One line per run (progress lines do not wrap), so progress needs no new layout.
        if runs:
            lines = Group(*(progress_line(r, now) for r in runs))
            self._set("active", active_sig, lines, len(runs))
        else:
            self._set("active", active_sig, Text("no runs in progress", "dim"), 1)

        results = list(self.model.results)[-RESULTS_SHOWN:]
        # With results to show, "no runs in progress" would take the line their figures need.
        for static in self.query("#active"):
            static.display = bool(runs) or not results
        results_sig = tuple(results)
        if results and width >= FULL_W:
            self._set("results", (results_sig, True), results_full(results))
        elif results:
            self._set("results", (results_sig, False), results_table(results))
        else:
            self._set("results", results_sig, Text("no results yet", "dim"))

        dropped = self.model.dropped
        for static in self.query("#dropped"):
            static.display = dropped > 0
        self._set("dropped", dropped, f"dropped {dropped} events (the stream was full)")
