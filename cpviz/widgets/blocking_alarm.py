"""The blocking alarm: calm while the loop turns, flashing with the culprit's line while frozen."""

from __future__ import annotations

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from cpviz.engine.events import Frame
from cpviz.engine.model import IncidentView, Model
from cpviz.widgets._format import fmt_seconds, rel_path

#: Flashes per second while the loop is frozen (two phases each).
FLASH_HZ = 4.0
#: Loop lag above this is shown as "slow" rather than "responsive".
SLOW_LAG_S = 0.05


def flash_phase(now: float, hz: float = FLASH_HZ) -> int:
    """0 or 1, derived from the display clock so a screenshot at a given time is always the same."""
    return int(now * hz) % 2


def where(frame: Frame) -> str:
    """``file:line in function()`` with the path made short."""
    return f"{rel_path(frame.file)}:{frame.line} in {frame.function}()"


def describe(incident: IncidentView) -> str:
    """Where the loop is stuck, in one line: the culprit, its code and the blocking call."""
    frame = incident.culprit
    if frame is None:
        inner = incident.stack[-1] if incident.stack else None
        if inner is None:
            return "no stack captured"
        text = f"no user code on the stack; innermost {where(inner)}"
    else:
        text = where(frame)
        if frame.code:
            text += f" — {frame.code}"
    if incident.blocking_call:
        text += f" [blocking call: {incident.blocking_call}]"
    return text


class BlockingAlarm(Widget):
    """Everything it shows comes from the watchdog's incidents and lag samples in the Model."""

    COMPONENT_CLASSES = {
        "blocking-alarm--calm",
        "blocking-alarm--slow",
        "blocking-alarm--flash-on",
        "blocking-alarm--flash-off",
        "blocking-alarm--muted",
        "blocking-alarm--where",
    }

    DEFAULT_CSS = """
    BlockingAlarm {
        height: 7;
        & > .blocking-alarm--calm { color: $success; }
        & > .blocking-alarm--slow { color: $warning; text-style: bold; }
        & > .blocking-alarm--flash-on { color: $text; background: $error; text-style: bold; }
        & > .blocking-alarm--flash-off { color: $error-lighten-2; background: $surface;
                                         text-style: bold; }
        & > .blocking-alarm--muted { color: $text-muted; }
        & > .blocking-alarm--where { color: $text; }
    }
    """

    now: reactive[float] = reactive(0.0)
    """Display time: drives the open incident's duration and the flash phase."""

    version: reactive[int] = reactive(0)
    """The Model version last pushed down."""

    frozen: reactive[bool] = reactive(False)
    """Whether an incident is open (mirrored as the ``-frozen`` CSS class)."""

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model

    def watch_version(self) -> None:
        self.frozen = self.model.open_incident is not None

    def watch_frozen(self, frozen: bool) -> None:
        self.set_class(frozen, "-frozen")
        self.border_title = "LOOP FROZEN" if frozen else "blocking alarm"

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"blocking-alarm--{name}", partial=True)

    def render(self) -> RenderableType:
        model = self.model
        width = max(1, self.content_size.width)
        lines: list[Text] = []
        incident = model.open_incident
        if incident is not None:
            phase = flash_phase(self.now)
            style = self._style("flash-on" if phase == 0 else "flash-off")
            status = Text(
                f" LOOP FROZEN {fmt_seconds(incident.duration(self.now))} — {describe(incident)}",
                style=style, no_wrap=True, overflow="ellipsis",
            )
            status.pad_right(max(0, width - status.cell_len))
            status.truncate(width, overflow="ellipsis")
            lines.append(status)
        elif model.lag_s >= SLOW_LAG_S:
            lines.append(Text(f"● loop slow · lag {fmt_seconds(model.lag_s)}", self._style("slow")))
        else:
            lines.append(
                Text(f"● loop responsive · lag {fmt_seconds(model.lag_s)}", self._style("calm"))
            )

        past = [inc for inc in reversed(model.incidents) if inc.end is not None]
        if not past:
            lines.append(Text("no incidents yet", self._style("muted")))
        else:
            total = len(past)
            lines.append(Text(f"recent incidents ({total}):", self._style("muted")))
            for inc in past[: max(0, self.content_size.height - 2)]:
                line = Text(no_wrap=True, overflow="ellipsis")
                line.append(f"  #{inc.incident_id:<3} ", self._style("muted"))
                line.append(f"{fmt_seconds(inc.duration(self.now)):>8}", Style(bold=True))
                line.append(f"  at {inc.since:7.2f} s  ", self._style("muted"))
                line.append(describe(inc), self._style("where"))
                line.truncate(width, overflow="ellipsis")
                lines.append(line)
        return Text("\n").join(lines)
