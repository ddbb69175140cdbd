"""Workloads to start, what each one demonstrates, runs in progress and what finished runs measured."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from cpviz.engine.events import RunResult
from cpviz.engine.model import Model, RunView
from cpviz.engine.source import WorkloadInfo
from cpviz.widgets._format import fmt_seconds, trim

#: Finished runs listed, newest last.
RESULTS_SHOWN = 5
#: Cells of a progress bar.
BAR_W = 14


@dataclass(frozen=True)
class WorkloadChoice:
    """What the app has chosen for one workload key; compared by value so unchanged means no redraw."""

    info: WorkloadInfo
    #: Mode the next start will use.
    mode: str
    #: The ``real`` parameter, or None if the workload has none.
    real: bool | None
    #: Whether the controller reports a run of it in progress.
    running: bool


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
            f"{r.workload}:{r.mode}",
            fmt_seconds(r.wall_s).replace(" ", ""),
            fmt_seconds(r.cpu_s).replace(" ", ""),
            f"{r.parallelism:.2f}×",
            speedup,
            str(len(r.incidents)),
            Text(end, style="red" if end == "fail" else ""),
        )
    return table


def progress_line(run: RunView, now: float) -> Text:
    """``workload:mode  ██████░░░░  23/40`` drawn with Rich, so nothing animates on its own."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{run.workload}:{run.mode} ", Style(bold=True))
    if run.total > 0:
        filled = round(BAR_W * min(1.0, run.done / run.total))
        text.append("█" * filled, "green")
        text.append("░" * (BAR_W - filled), "dim")
        text.append(f" {run.done}/{run.total}")
    else:
        text.append(f"running {fmt_seconds(max(0.0, now - run.start))}", "dim")
    return text


class RunPanel(VerticalScroll, can_focus=False):
    """Composed of plain Statics; each is updated only when its own text would change."""

    DEFAULT_CSS = """
    RunPanel {
        height: 1fr;
        & > Static { width: 1fr; height: auto; }
        & > #explain { color: $text-muted; padding: 0 0 0 2; }
        & > .heading { color: $text-muted; text-style: bold; margin-top: 1; }
        & > #dropped { color: $warning; }
    }
    """

    choices: reactive[tuple[WorkloadChoice, ...]] = reactive((), always_update=False)
    """Every workload, in key order, with the mode and real/sim the next start will use."""

    selected: reactive[int] = reactive(0)
    """Index into ``choices`` that ``m``, ``r`` and the explanation refer to."""

    now: reactive[float] = reactive(0.0, repaint=False)
    """Display time, for the elapsed time of runs with no known total."""

    version: reactive[int] = reactive(0, repaint=False)
    """The Model version last pushed down."""

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self._shown: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="workloads")
        yield Static(id="explain")
        yield Static("runs in progress", classes="heading", id="active-heading")
        yield Static(id="active")
        yield Static("recent results", classes="heading", id="results-heading")
        yield Static(id="results")
        yield Static(id="dropped")

    def on_mount(self) -> None:
        self.border_title = "workloads"
        self._update_all()

    def watch_choices(self) -> None:
        self._update_all()

    def watch_selected(self) -> None:
        self._update_all()

    def watch_version(self) -> None:
        self._update_all()

    def watch_now(self) -> None:
        if any(r.total <= 0 for r in self.model.active_runs()):
            self._update_all()

    def _set(self, widget_id: str, signature: object, content: RenderableType | str) -> None:
        """Update one Static, skipping the layout work when nothing it shows has changed."""
        if not self.is_mounted or self._shown.get(widget_id) == signature:
            return
        self._shown[widget_id] = signature
        self.query_one(f"#{widget_id}", Static).update(content)

    def _update_all(self) -> None:
        if not self.is_mounted:
            return
        choices = self.choices
        selected = min(self.selected, len(choices) - 1) if choices else -1

        listing = Text(no_wrap=True, overflow="ellipsis")
        for i, choice in enumerate(choices):
            is_sel = i == selected
            line_style = Style(bold=True, reverse=is_sel)
            listing.append(f"{'▶' if is_sel else ' '}{i + 1} ", line_style)
            listing.append(f"{choice.info.key:<9}", line_style)
            listing.append(f" {choice.mode}", Style(reverse=is_sel))
            if choice.real is not None:
                listing.append(" · real" if choice.real else " · sim", Style(reverse=is_sel))
            listing.append(" ● running" if choice.running else "", "bold green")
            if i < len(choices) - 1:
                listing.append("\n")
        self._set("workloads", (choices, selected), listing)

        if 0 <= selected < len(choices):
            info = choices[selected].info
            modes = " ".join(
                f"[{m}]" if m == choices[selected].mode else m for m in info.modes
            )
            explain = Text()
            explain.append(f"{info.title}\n", Style(bold=True))
            explain.append(f"modes: {modes}\n", "dim")
            explain.append(info.explanation)
            self._set("explain", (info, choices[selected].mode), explain)
        else:
            self._set("explain", None, "no workloads")

        runs = self.model.active_runs()
        now = self.now
        active_sig = tuple(
            (r.run_id, r.done, r.total, round(now - r.start, 1) if r.total <= 0 else 0)
            for r in runs
        )
        if runs:
            self._set("active", active_sig, Group(*(progress_line(r, now) for r in runs)))
        else:
            self._set("active", active_sig, Text("none — press a number to start one", "dim"))

        results = list(self.model.results)[-RESULTS_SHOWN:]
        results_sig = tuple(id(r) for r in results)
        if results:
            self._set("results", results_sig, results_table(results))
        else:
            self._set("results", results_sig, Text("none yet", "dim"))

        dropped = self.model.dropped
        self._set(
            "dropped", dropped, f"dropped {dropped} events (the stream was full)" if dropped else ""
        )
