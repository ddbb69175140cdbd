"""The blocking alarm: calm while the loop turns, flashing with the culprit's line while frozen."""

from __future__ import annotations

import io
import math
import tokenize
from typing import ClassVar, TypeVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget

from cpviz.engine.events import Frame, Waiter
from cpviz.engine.model import IncidentView, Model, StallView
from cpviz.widgets._format import fmt_seconds, rel_path

#: Flashes per second while the loop is frozen (two phases each).
FLASH_HZ = 4.0
#: Loop lag above this is shown as "slow" rather than "responsive".
SLOW_LAG_S = 0.05
#: Seconds of display time the loop lag shown holds its peak.
LAG_HOLD_S = 1.0
#: Lines the open incident's status may wrap onto before it is cut.
STATUS_LINES = 2


def flash_phase(now: float, hz: float = FLASH_HZ) -> int:
    """0 or 1, derived from the display clock so a screenshot at a given time is always the same."""
    return int(now * hz) % 2


def fmt_lag(lag_s: float) -> str:
    """Loop lag as shown: sub-millisecond jitter reads as one value, so it does not redraw."""
    return "< 1 ms" if lag_s < 0.001 else fmt_seconds(lag_s)


def where(frame: Frame) -> str:
    """``file:line in function()`` with the path made short."""
    return f"{rel_path(frame.file)}:{frame.line} in {frame.function}()"


#: The banner's first words for each cause of a freeze.
HEADLINES = {
    "blocking": "LOOP BLOCKED",
    "gil": "LOOP STARVED OF THE GIL",
    "cpu": "LOOP STARVED OF CPU",
    "gc": "LOOP PAUSED BY GC",
}


def headline(incident: IncidentView) -> str:
    """What the banner calls the freeze: its cause, where one was told apart."""
    return HEADLINES.get(incident.cause, "LOOP FROZEN")


def _split(incident: IncidentView) -> str:
    """`` (gil 85%, cpu 3%)`` when more than one cause had a real share."""
    shown = [(name, share) for name, share in incident.shares if share >= 0.1]
    if len(shown) < 2:
        return ""
    return " (" + ", ".join(f"{name} {share:.0%}" for name, share in shown) + ")"


def bare_code(code: str) -> str:
    """A source line without its padding and trailing comment: the call is what matters.

    Tokenized, so a ``#`` inside a string stays; a line that does not tokenize on its own
    (an open bracket) falls back to cutting at the first ``  #``.
    """
    code = code.strip()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                return code[: tok.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):
        return code.split("  #")[0].rstrip()
    return code


def describe(incident: IncidentView) -> str:
    """Why and where the loop is stuck, in one line.

    A freeze of the loop's own code names the call first, then where it is, so the call is
    what a narrow screen still shows; a freeze with another cause (the GIL, no free CPU, a
    collection) names what was behind it. Incidents nobody classified (cause "") that name a
    blocking call read like the ``blocking`` ones.
    """
    if incident.cause in ("gil", "cpu", "gc"):
        return incident.cause_detail + _split(incident)
    frame = incident.culprit
    if frame is None:
        inner = incident.stack[-1] if incident.stack else None
        if inner is None:
            return "no stack captured"
        text = f"no user code on the stack; innermost {where(inner)}"
        if incident.blocking_call:
            text = f"{incident.blocking_call} — {text}"
        return text
    text = where(frame)
    if incident.cause == "blocking" or incident.blocking_call:
        text = f"{incident.blocking_call or 'code'} at {text}"
    code = bare_code(frame.code) if frame.code else ""
    if code:
        text += f" — {code}"
    return text + _split(incident)


def describe_waiter(waiter: Waiter) -> str:
    """``task left waits on lock_b (held by right) at deadlock.py:42 in take()``."""
    text = f"{waiter.kind} {waiter.name} waits"
    if waiter.waits_on:
        text += f" on {waiter.waits_on}"
    if waiter.held_by:
        text += f" (held by {waiter.held_by})"
    if waiter.frame is not None:
        text += f" at {where(waiter.frame)}"
        code = bare_code(waiter.frame.code) if waiter.frame.code else ""
        if code:
            text += f" — {code}"
    return text


T = TypeVar("T", IncidentView, StallView)


def _ended_by(item: IncidentView | StallView, now: float) -> bool:
    return item.end is not None and item.end <= now


def _open_at(items: list[T], now: float) -> T | None:
    """The one open at ``now``: detected by then and not yet over. One at a time, so the
    newest detected by ``now`` is the only candidate."""
    for item in reversed(items):
        if item.detected <= now:
            return None if _ended_by(item, now) else item
    return None


class BlockingAlarm(Widget):
    """Everything it shows comes from the watchdog's incidents and lag samples in the Model."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "blocking-alarm--calm",
        "blocking-alarm--slow",
        "blocking-alarm--flash-on",
        "blocking-alarm--flash-off",
        "blocking-alarm--muted",
        "blocking-alarm--where",
    }

    DEFAULT_CSS = """
    BlockingAlarm {
        height: 6;
        &.-stalled { border: heavy $warning; border-title-color: $warning; }
        & > .blocking-alarm--calm { color: $success; }
        & > .blocking-alarm--slow { color: $warning; text-style: bold; }
        & > .blocking-alarm--flash-on { color: $text; background: $error; text-style: bold; }
        & > .blocking-alarm--flash-off { color: $error-lighten-2; background: $surface;
                                         text-style: bold; }
        & > .blocking-alarm--muted { color: $text-muted; }
        & > .blocking-alarm--where { color: $text; }
    }
    """

    frozen: reactive[bool] = reactive(False)
    """Whether an incident is open (mirrored as the ``-frozen`` CSS class)."""

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        #: Display time: drives the open incident's duration and the flash phase. Set through
        #: :meth:`show`.
        self.now = 0.0
        #: The loop lag on screen: the worst reported over the last hold period (see show).
        self.lag_s = 0.0
        self._lag_peak = 0.0
        self._lag_period = 0
        self._lag_reported = False
        self._shown_status: tuple[object, ...] | None = None
        self._shown_body: tuple[object, ...] | None = None
        #: Rendered lines by what they show: the status line, and the incident history.
        self._strips: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(16)
        self._incidents_seen = -1
        self._open: IncidentView | None = None
        self._stall: StallView | None = None
        #: Incidents that had ended by the display time.
        self._past = 0
        #: Lines the status took when last drawn (an incident's wraps).
        self._status_rows = 1

    def show(self, now: float) -> None:
        """Take a frame's display time; repaint only when the text or the flash phase changes."""
        self.now = now
        model = self.model
        self._hold_lag(now, model.lag_s, model.lag_at > 0.0)
        # What was open at ``now``: the latest moment live, an earlier one while scrubbing.
        self._open = _open_at(model.incidents, now)
        self.frozen = self._open is not None
        stall = _open_at(model.stalls, now)
        if stall is not self._stall:
            self._stall = stall
            self.set_class(stall is not None, "-stalled")
            self._retitle()
        self._past = sum(1 for inc in model.incidents if _ended_by(inc, now))
        status = self._status_key(self._open)
        # Past incidents have ended, so their text changes only when the list does.
        body = (model.incidents_version, self._past, len(model.stalls), self._stall is None,
                self.outer_size)
        if body != self._shown_body:
            self._shown_body, self._shown_status = body, status
            self.refresh()
        elif status != self._shown_status:
            self._shown_status = status
            rows = len(self._status_strips(self.size.width))
            if rows != self._status_rows:
                self.refresh()  # the status wrapped onto more or fewer lines: history moves
            else:
                self.refresh(Region(0, 0, self.size.width, rows))

    def _hold_lag(self, now: float, lag_s: float, reported: bool) -> None:
        """Peak-hold the lag the watchdog reports ten times a second.

        The figure shown changes once per LAG_HOLD_S of display time, to the worst lag of the
        period just ended, so a short spike stays readable and jitter does not repaint every
        frame; the first report and turning slow show at once.
        """
        period = math.floor(now / LAG_HOLD_S)
        if not self._lag_reported:
            self._lag_reported = reported
            self._lag_period, self.lag_s, self._lag_peak = period, lag_s, lag_s
        elif period != self._lag_period:
            self._lag_period = period
            self.lag_s = max(self._lag_peak, lag_s)
            self._lag_peak = lag_s
        else:
            self._lag_peak = max(self._lag_peak, lag_s)
            if self._lag_peak >= SLOW_LAG_S > self.lag_s:
                self.lag_s = self._lag_peak

    def watch_frozen(self, frozen: bool) -> None:
        self.set_class(frozen, "-frozen")
        self._retitle()

    def _retitle(self) -> None:
        if self.frozen:
            self.border_title = "LOOP FROZEN"
        elif self._stall is not None:
            self.border_title = "NO PROGRESS — deadlock?"
        else:
            self.border_title = "blocking alarm"

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"blocking-alarm--{name}", partial=True)

    def _status_key(self, incident: IncidentView | None) -> tuple[object, ...]:
        """Everything the status line shows: while ``incident`` is open, phase and duration."""
        if incident is not None:
            now = self.now
            return (incident.incident_id, flash_phase(now), fmt_seconds(incident.duration(now)),
                    incident.cause, incident.cause_detail)
        stall = self._stall
        if stall is not None:
            now = self.now
            return ("stall", stall.stall_id, flash_phase(now), fmt_seconds(now - stall.since))
        return (self.lag_s >= SLOW_LAG_S, fmt_lag(self.lag_s))

    def _status(self, width: int) -> Text:
        """The status: the open incident or stall, flashing and wrapped onto at most
        STATUS_LINES lines (cut, the call and its line were what went missing), or the lag."""
        incident = self._open
        if incident is not None:
            phase = flash_phase(self.now)
            style = self._style("flash-on" if phase == 0 else "flash-off")
            return self._wrapped(
                f" {headline(incident)} {fmt_seconds(incident.duration(self.now))} — "
                f"{describe(incident)}", style, width,
            )
        stall = self._stall
        if stall is not None:
            style = self._style("flash-on" if flash_phase(self.now) == 0 else "flash-off")
            names = " ↔ ".join(w.name for w in stall.waiters) or "its tasks"
            return self._wrapped(
                f" NO PROGRESS {fmt_seconds(max(0.0, self.now - stall.since))} — run "
                f"{stall.run_id}: {names} wait on each other; nothing will wake them",
                style, width,
            )
        slow = self.lag_s >= SLOW_LAG_S
        return Text(
            f"● loop {'slow' if slow else 'responsive'} · lag {fmt_lag(self.lag_s)}",
            self._style("slow" if slow else "calm"), no_wrap=True, overflow="ellipsis",
        )

    def _wrapped(self, text: str, style: Style, width: int) -> Text:
        """``text`` wrapped at word boundaries to ``width``, each line filled with ``style``
        (the flash is a block), the last of STATUS_LINES cut with an ellipsis."""
        # Every line starts one cell in, as the status always did.
        inner = max(1, width - 1)
        lines = list(Text(text.lstrip(), style=style).wrap(self.app.console, inner,
                                                           overflow="fold"))
        if len(lines) > STATUS_LINES:
            lines = lines[:STATUS_LINES]
            lines[-1].append(" …")
        for line in lines:
            line.rstrip()
            line.truncate(inner, overflow="ellipsis")
            line.pad_left(1)
            line.truncate(width, overflow="ellipsis")
            line.pad_right(max(0, width - line.cell_len))
            line.stylize(style)
            line.no_wrap = True
        return Text("\n").join(lines)

    def _history(self, width: int, height: int) -> list[Text]:
        """The lines under the status: past incidents, newest first, as many as fit.

        While a stall is open, its waiters come first: who waits on what, and where.
        """
        stall = self._stall
        if stall is not None:
            lines = []
            for waiter in stall.waiters[: max(1, height - 1)]:
                line = Text("  " + describe_waiter(waiter), self._style("where"),
                            no_wrap=True, overflow="ellipsis")
                line.truncate(width, overflow="ellipsis")
                lines.append(line)
            return lines or [Text("no waiter could be named", self._style("muted"))]
        now = self.now
        past = [inc for inc in reversed(self.model.incidents) if _ended_by(inc, now)]
        if not past:
            return [Text("no incidents yet", self._style("muted"))]
        # Room for one line (a short screen): the newest incident itself, not a heading.
        one = height <= 2
        lines = [] if one else [Text(f"recent incidents ({len(past)}):", self._style("muted"))]
        for inc in past[: 1 if one else max(0, height - 2)]:
            line = Text(no_wrap=True, overflow="ellipsis")
            prefix = f"last of {len(past)}: " if one else "  "
            line.append(f"{prefix}#{inc.incident_id:<3} ", self._style("muted"))
            line.append(f"{fmt_seconds(inc.duration(self.now)):>8}", Style(bold=True))
            line.append(f"  at {inc.since:7.2f} s  ", self._style("muted"))
            if inc.cause:
                line.append(f"{inc.cause}: ", Style(bold=True))
            line.append(describe(inc), self._style("where"))
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        return lines

    def render(self) -> RenderableType:
        """The whole alarm as one Text (the screen draws it line by line, see render_line)."""
        width, height = self.content_size
        status = self._status(max(1, width))
        rows = len(status.plain.split("\n"))
        return Text("\n").join([status, *self._history(width, height - rows + 1)])

    def _status_strips(self, width: int) -> list[Strip]:
        """The status's lines (one, or a wrapped incident's few), from cache when drawn before."""
        key = ("status", self._status_key(self._open), width)
        strips = self._strips.get(key)
        if strips is None:
            status = self._status(max(1, width))
            strips = self._strips[key] = Visual.to_strips(
                self, visualize(self, status), width, len(status.plain.split("\n")),
                self.visual_style,
            )
        self._status_rows = len(strips)
        return strips

    def render_line(self, y: int) -> Strip:
        """The status first, drawn on its own so a new lag or phase repaints only its lines."""
        width, height = self.size
        status = self._status_strips(width)
        if y < len(status):
            return status[y]
        # As many history lines as are left under the status.
        room = height - len(status) + 1
        stall = self._stall.stall_id if self._stall is not None else None
        key = ("history", self.model.incidents_version, self._past, stall, width, room)
        strips = self._strips.get(key)
        if strips is None:
            texts = self._history(width, room)
            strips = self._strips[key] = Visual.to_strips(
                self, visualize(self, Text("\n").join(texts)), width, len(texts),
                self.visual_style,
            )
        index = y - len(status)
        if index < len(strips):
            return strips[index]
        return Strip.blank(width, self.visual_style.rich_style)
