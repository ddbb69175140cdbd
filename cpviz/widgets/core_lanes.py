"""One lane per logical CPU: what the OS says each core did, and whose work it was."""

from __future__ import annotations

import math

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cpviz.engine.events import ROLES
from cpviz.engine.model import Model
from cpviz.widgets._format import fmt_count, level_glyph, trim

#: Seconds of history each lane shows.
HISTORY_S = 30.0
#: Placements below this share of a core are noise, not "this role ran here".
MIN_ROLE_PCT = 5.0
#: Roles shown in the legend (``other`` draws like an unknown owner).
LEGEND_ROLES = tuple(r for r in ROLES if r != "other")


class CoreLanes(ScrollView, can_focus=False):
    """Line API view: a lane is one cached strip, rebuilt only when a sample or column arrives."""

    COMPONENT_CLASSES = {
        "core-lanes--label",
        "core-lanes--idle",
        *(f"core-lanes--{role}" for role in ROLES),
    }

    DEFAULT_CSS = """
    CoreLanes {
        height: auto;
        overflow-x: hidden;
        & > .core-lanes--label { color: $text-muted; }
        & > .core-lanes--idle { color: $text-disabled; }
        & > .core-lanes--other { color: $text-disabled; }
        & > .core-lanes--loop { color: $primary; }
        & > .core-lanes--thread { color: $accent; }
        & > .core-lanes--process { color: $success; }
        & > .core-lanes--server { color: ansi_bright_magenta; }
        & > .core-lanes--ui { color: ansi_bright_cyan; }
        & > .core-lanes--probe { color: $text-muted; }
    }
    """

    now: reactive[float] = reactive(0.0)
    """Display time (the app's, frozen while paused); lanes end here."""

    version: reactive[int] = reactive(0)
    """The Model version last pushed down; a change means there may be new samples."""

    def __init__(
        self, model: Model, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(256)

    def on_mount(self) -> None:
        self._sync_size()

    def on_resize(self) -> None:
        self._sync_size()

    def watch_version(self) -> None:
        self._sync_title()

    def _sync_size(self) -> None:
        # One line per core plus the legend; no horizontal scrolling.
        self.virtual_size = Size(self.scrollable_content_region.width, self.model.cores + 1)
        self._sync_title()

    def _sync_title(self) -> None:
        ctx = self.model.ctx_switches_per_s
        self.border_title = "cores"
        self.border_subtitle = f"last {HISTORY_S:g} s · {fmt_count(ctx)} ctx switches/s"

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    # -- drawing --------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"core-lanes--{name}", partial=True)

    def _role_style(self, role: str | None) -> Style:
        return self._style(role if role in ROLES and role != "other" else "idle")

    def render_line(self, y: int) -> Strip:
        _, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        cores = self.model.cores
        if index < cores:
            strip = self._lane(index, width)
        elif index == cores:
            strip = self._legend(width)
        else:
            strip = Strip.blank(width)
        return strip.apply_style(self.rich_style)

    def _legend(self, width: int) -> Strip:
        key = ("legend", width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        segments = [Segment("      ", self._style("label"))]
        for role in LEGEND_ROLES:
            segments.append(Segment("█ ", self._role_style(role)))
            segments.append(Segment(f"{role}  ", self._style("label")))
        segments.append(Segment("█ ", self._style("idle")))
        segments.append(Segment("unknown", self._style("label")))
        strip = Strip(segments).crop_extend(0, width, None)
        self._cache[key] = strip
        return strip

    def _lane(self, core: int, width: int) -> Strip:
        model = self.model
        label_w = len(f"cpu{max(0, model.cores - 1)}") + 1
        tail_w = min(22, max(6, width // 4))
        ncols = max(1, width - label_w - tail_w)
        step = HISTORY_S / ncols
        column = math.floor(self.now / step)
        latest = model.latest_sample()
        key = (core, width, column, latest.t if latest is not None else None)
        cached = self._cache.get(key)
        if cached is not None:
            return cached

        # Columns are aligned to absolute time, so the picture shifts one whole cell at a time.
        t1 = (column + 1) * step
        columns = model.core_columns(core, t1 - HISTORY_S, t1, ncols)
        segments = [Segment(f"cpu{core}".ljust(label_w), self._style("label"))]
        run_text: list[str] = []
        run_style: Style | None = None
        for col in columns:
            glyph = " " if col.pct is None else level_glyph(col.pct / 100.0)
            style = self._role_style(col.role)
            if style != run_style and run_text:
                segments.append(Segment("".join(run_text), run_style))
                run_text = []
            run_style = style
            run_text.append(glyph)
        if run_text:
            segments.append(Segment("".join(run_text), run_style))

        tail = [Segment(" ")]
        if latest is not None and core < len(latest.percents):
            tail.append(Segment(f"{latest.percents[core]:>3.0f}% ", Style(bold=True)))
            roles: list[str] = []
            for p in sorted(latest.placements, key=lambda p: -p.cpu_pct):
                if p.core == core and p.cpu_pct >= MIN_ROLE_PCT and p.role not in roles:
                    roles.append(p.role)
            room = tail_w - 6
            for role in roles:
                name = trim(role, room)
                if not name:
                    break
                tail.append(Segment(name, self._role_style(role)))
                room -= len(name) + 1
                if room > 0:
                    tail.append(Segment(" "))
                if room <= 1:
                    break
        strip = Strip(segments + tail).crop_extend(0, width, None)
        self._cache[key] = strip
        return strip
