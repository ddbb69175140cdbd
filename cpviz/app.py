"""The Textual app: pulls frames from the Model at a fixed rate, turns keys into controller calls.

This is the one bridge between the engine and the UI. The engine never calls in here: a timer on
the UI thread polls the Source, folds the events into the Model, and pushes the Model and the
display time down to the widgets as attributes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Footer, Header

from cpviz.crash import report
from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.model import Model
from cpviz.engine.recording import RecorderStatus
from cpviz.engine.replay import ReplaySource
from cpviz.engine.source import Controller, Source
from cpviz.widgets import (
    BlockingAlarm,
    CoreLanes,
    HelpScreen,
    Measures,
    OutputPane,
    RunPanel,
    Timeline,
    TooSmallScreen,
    WorkloadChoice,
)
from cpviz.widgets._format import fmt_seconds, fmt_window
from cpviz.widgets.measures import lines_for as measure_lines
from cpviz.widgets.os_rows import OsRows
from cpviz.widgets.seek_screen import SeekScreen

#: Timeline windows that ``+`` and ``-`` step through, in seconds.
WINDOWS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
DEFAULT_WINDOW = 5.0
#: Source seconds between moves of the views on the time axis (lanes, measures, timeline,
#: thread rows) on timer frames. Each move repaints every row that shifted, and a screen update
#: costs Textual about a millisecond however little it holds, so the axis moves five times a
#: second (four columns at a time at 5 s across 100 columns; windows of 20 s and more move by
#: single columns) instead of with every frame. Frames asked for directly (keys) always move it.
AXIS_EVERY_S = 0.2
#: Keys 1..9 and 0 map to the first ten workloads (the tenth is your own code, if given).
MAX_WORKLOADS = 10


def workload_key(index: int) -> str:
    """The key that selects workload ``index``."""
    return str(index + 1) if index < 9 else "0"


class CrashLine(App[None]):
    """An App whose unhandled exception becomes :attr:`crash`, one line, instead of the page
    of traceback Textual prints on exit; the command then exits non-zero
    (:func:`cpviz.crash.screen_status`)."""

    #: The line to print once the screen is gone, when it crashed.
    crash: str | None = None

    def _handle_exception(self, error: Exception) -> None:
        if self.crash is None:
            self.crash = report(error)
        super()._handle_exception(error)
        # Textual would print a full traceback over the restored terminal: the file has it.
        self._exit_renderables.clear()


class CpvizApp(CrashLine):
    """Live view of a Source: everything drawn comes from the Model, timed by the Source clock."""

    CSS_PATH = "cpviz.tcss"
    TITLE = "cpviz"
    ENABLE_COMMAND_PALETTE = False
    #: Screen classes by terminal height, used by cpviz.tcss to share out the rows. (No ClassVar:
    #: App declares it as a plain attribute, and mypy will not let a subclass change that.)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-normal"), (46, "-tall")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "toggle_workload(0)", "run", key_display="1-9"),
        *(
            Binding(workload_key(i), f"toggle_workload({i})", show=False)
            for i in range(1, MAX_WORKLOADS)
        ),
        Binding("m", "cycle_mode", "mode"),
        Binding("r", "toggle_real", "real"),
        Binding("left_square_bracket", "adjust(0, -1)", "live", key_display="[ ]"),
        Binding("right_square_bracket", "adjust(0, 1)", "more", show=False),
        Binding("left_curly_bracket", "adjust(1, -1)", "less", show=False),
        Binding("right_curly_bracket", "adjust(1, 1)", "more", show=False),
        Binding("c", "cycle_pin", "pin"),
        # Priority: the focused timeline would otherwise take ← → to scroll sideways, which it
        # never needs (its columns always fit).
        Binding("left", "scrub(-1)", "step", key_display="← →", priority=True),
        Binding("right", "scrub(1)", "forward", show=False, priority=True),
        # The timeline scrolls whichever view has the focus (the measures, focused first,
        # would take them otherwise); on help or the seek box they are theirs (check_action).
        Binding("up", "scroll_timeline('up')", "scroll", show=False, priority=True),
        Binding("down", "scroll_timeline('down')", "scroll", show=False, priority=True),
        Binding("pageup", "scroll_timeline('page_up')", "page", show=False, priority=True),
        Binding("pagedown", "scroll_timeline('page_down')", "page", show=False,
                priority=True),
        Binding("n", "incident(1)", "next incident"),
        Binding("N", "incident(-1)", "previous incident", show=False),
        Binding("less_than_sign,comma", "speed(-1)", "speed", key_display="< >"),
        Binding("greater_than_sign,full_stop", "speed(1)", "faster", show=False),
        Binding("g", "seek", "seek"),
        Binding("space", "toggle_pause", "pause"),
        Binding("plus,equals_sign", "zoom_in", "zoom", key_display="+/-"),
        Binding("minus", "zoom_out", "zoom out", show=False),
        Binding("o", "toggle_output", "output", show=False),
        Binding("i", "toggle_own", "own", show=False),
        Binding("t", "toggle_chart", "chart/table", show=False),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    paused: reactive[bool] = reactive(False)
    """Display frozen at ``now``; the Model keeps folding events underneath."""

    window_s: reactive[float] = reactive(DEFAULT_WINDOW)
    """Seconds of history the timeline spans."""

    selected: reactive[int] = reactive(0)
    """Index of the workload that ``m``, ``r`` and the explanation refer to."""

    def __init__(
        self,
        source: Source,
        controller: Controller,
        *,
        fps: float = 25.0,
        start: tuple[str, str | None] | None = None,
        start_settings: Mapping[str, Any] | None = None,
        min_size: tuple[int, int] = (80, 24),
        recording: Callable[[], RecorderStatus] | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        super().__init__()
        # Nothing here may move on its own: every change on screen follows the Source clock.
        self.animation_level = "none"
        self.source = source
        #: The replay being shown, when the Source is one: space, ←/→, n, < > and g drive it.
        self.replay = source if isinstance(source, ReplaySource) else None
        #: Reads the recorder's status (file, size, cap), when this session is being recorded.
        self.recording = recording
        self._rec_shown: tuple[object, ...] | None = None
        self._followed = -1
        #: Slow motion: display time runs this many times slower than the Source from ``anchor``.
        self.dilation = 1.0
        self.anchor = 0.0
        self.controller = controller
        self.fps = fps
        self.start_request = start
        #: ``--set key=value`` overrides for the ``start`` workload (the controller validates them).
        self.start_settings = dict(start_settings or {})
        self.min_size = min_size
        self.model = Model(cores=source.cores)
        #: Display time: the Source clock at the last unpaused frame.
        self.now = source.clock.now()
        #: Display time when the live view was last paused: "N s back" counts from it.
        self.paused_at = self.now
        self._infos: tuple[WorkloadInfo, ...] = tuple(controller.workloads())[:MAX_WORKLOADS]
        self._mode_by_key: dict[str, str] = {
            info.key: info.modes[0] if info.modes else "" for info in self._infos
        }
        self._params_by_key: dict[str, dict[str, Any]] = {
            info.key: {p.name: p.default for p in info.params} for info in self._infos
        }
        self._controller_closed = False
        self._reported: set[int] = set()
        #: Time of the last observed-process event already told (see _report_observed).
        self._observed_upto = -1.0
        #: The AXIS_EVERY_S period the axis views were last moved in.
        self._axis_tick = -1
        self.lanes = CoreLanes(self.model, id="lanes")
        self.runs = RunPanel(self.model, id="runs")
        self.timeline = Timeline(self.model, id="timeline")
        self.measures = Measures(self.model, id="measures")
        #: Cores the lab is pinned to, or None for all of them.
        self.pinned: int | None = None
        self.alarm = BlockingAlarm(self.model, id="alarm")
        #: The observed program's own output (``o``); only a program run as it is has any.
        self.output = OutputPane(self.model, id="output")
        #: Threads and processes as the OS saw them: a live lab's sampler, or a recording's.
        sampler = getattr(getattr(controller, "lab", None), "os_rows", None)
        store = getattr(sampler, "store", None)
        if store is None and self.replay is not None:
            store = self.replay.os_rows
        self.os_rows = OsRows(store, id="os-rows")
        if store is None:
            self.os_rows.display = False

    # -- composition and the frame loop ---------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◴")
        yield from self.compose_views()
        yield Footer()

    def compose_views(self) -> ComposeResult:
        """The views, top to bottom: runs, then cores, measures, timeline and alarm."""
        with Horizontal(id="top"):
            yield self.runs
        # Full width under the runs, on the timeline's axis: a core's column sits over the
        # task rows' column for the same moment.
        yield self.lanes
        yield self.measures
        yield self.timeline
        yield self.os_rows
        yield self.alarm
        yield self.output

    def on_mount(self) -> None:
        self._update_subtitle()
        if self.start_request is not None:
            key, mode = self.start_request
            self._start_requested(key, mode)
        self._frame()
        self.set_interval(1 / self.fps, self._tick)
        self._check_size(self.size.width, self.size.height)

    def _tick(self) -> None:
        """The frame timer's frame: the axis views move only on a new AXIS_EVERY_S period."""
        self._frame(axis=False)

    def _frame(self, axis: bool = True) -> None:
        """Fold what the Source has, advance display time unless paused, push both down.

        ``axis`` False (the timer) moves the views on the time axis only once a period.
        """
        replay = self.replay
        if replay is not None and replay.take_reset():
            self.model.reset()  # a backward seek: fold again from the start
        self.model.apply(self.source.poll())
        if replay is not None:
            while replay.behind:  # a long seek: the rest, in bounded batches
                self.model.apply(replay.poll())
            self._follow_replay()
        self._report_failures()
        self._report_observed()
        if not self.paused or replay is not None:
            self.now = self.display_time(self.source.clock.now())
        self._sync_recording()
        if replay is not None:
            self._update_subtitle()
        self._push(axis)

    def display_time(self, t: float) -> float:
        """What the views draw at Source time ``t``: the same, or slowed from ``anchor`` on.

        Slow motion stretches only what is drawn (the timeline scrolls slower, the alarm flashes
        slower); every event keeps the time it was measured at.
        """
        if self.dilation == 1.0:
            return t
        return self.anchor + max(0.0, t - self.anchor) / self.dilation

    def _follow_replay(self) -> None:
        """In a replay, the selection follows the newest run, so its explanation shows."""
        if self.model.runs_version == self._followed:
            return
        self._followed = self.model.runs_version
        if not self.model.runs:
            return
        newest = self.model.runs[max(self.model.runs)]
        index = next((i for i, info in enumerate(self._infos) if info.key == newest.workload),
                     None)
        if index is not None and index != self.selected:
            self.selected = index
            self._mode_by_key[newest.workload] = newest.mode

    def _sync_recording(self) -> None:
        """Show the recording's size in the subtitle; say once when the size cap stops it."""
        if self.recording is None:
            return
        status = self.recording()
        shown = (round(status.bytes / 1e5), status.capped, bool(status.message))
        if shown == self._rec_shown:
            return
        if status.message and not (self._rec_shown and self._rec_shown[2]):
            self.notify(status.message, severity="warning", timeout=15)
        self._rec_shown = shown
        self._update_subtitle()

    def _report_failures(self) -> None:
        """Say why a run failed, once: the results table only has room for "fail"."""
        for run in self.model.runs.values():
            result = run.result
            if result is None or run.run_id in self._reported:
                continue
            self._reported.add(run.run_id)
            if result.outcome.startswith("failed"):
                self.notify(
                    f"{run.workload}:{run.mode} {result.outcome}", severity="error", timeout=10
                )

    def _report_observed(self) -> None:
        """Say when the observed process died, how, and that the next key starts a new one."""
        for ev in self.model.observed:
            if ev.t <= self._observed_upto:
                continue
            self._observed_upto = ev.t
            if ev.what == "exited" and ev.status == 0:
                self.notify(f"{ev.detail}; its key runs it again", timeout=10)
            elif ev.what == "exited":
                self.notify(f"{ev.detail}; the next key starts it again", severity="error",
                            timeout=15)
            elif ev.what == "note":
                self.notify(ev.detail, timeout=15)

    def _push(self, axis: bool = True) -> None:
        """Hand the frame's display time down; each view repaints only what visibly changed.

        Plain method calls, not reactive assignments: a reactive with repaint would redraw a
        whole widget on every frame even when nothing on it moved. ``axis`` False leaves the
        views on the time axis as they are until a new AXIS_EVERY_S period of the Source clock.
        """
        # Held by reference, so the views keep up while help or the resize hint covers them.
        now = self.now
        tick = math.floor(self.source.clock.now() / AXIS_EVERY_S)
        if axis or tick != self._axis_tick:
            self._axis_tick = tick
            self._push_axis(now)
            # With the axis: a run's end shows at the next move, and keys push it at once.
            self.runs.show(now, self._choices(), self.selected)
        self.alarm.show(now)
        self.output.show()

    def _push_axis(self, now: float) -> None:
        """The views on the shared time axis, all at once, so their columns move together."""
        height = self.size.height
        self.timeline.show(now, self.window_s)
        self.lanes.max_rows = 2 if height < 32 else (4 if height < 46 else 8)
        self.lanes.show(now, self.window_s, self.timeline.axis_width())
        info = self._selected_info()
        self.measures.max_lines = measure_lines(height, self.measures.chart)
        self.measures.show(now, self.window_s, info.key if info is not None else None,
                           self.timeline.axis_width())
        self.os_rows.show(now, self.window_s, self.timeline.axis_width())

    def _choices(self) -> tuple[WorkloadChoice, ...]:
        running = self.controller.running()
        return tuple(
            WorkloadChoice(
                info,
                self._mode_by_key[info.key],
                self._real(info),
                info.key in running,
                tuple(
                    (p.name, self._params_by_key[info.key][p.name])
                    for p in info.params if p.live
                ),
            )
            for info in self._infos
        )

    def _real(self, info: WorkloadInfo) -> bool | None:
        params = self._params_by_key[info.key]
        return bool(params["real"]) if "real" in params else None

    # -- size -----------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        """Cover the main screen with a resize hint while the terminal is too small, and back."""
        min_w, min_h = self.min_size
        small = width < min_w or height < min_h
        too_small = next(
            (s for s in self.screen_stack if isinstance(s, TooSmallScreen)), None
        )
        if small and too_small is None:
            self.push_screen(TooSmallScreen(self.min_size, (width, height)))
        elif small and too_small is not None:
            too_small.size_now = (width, height)
        elif not small and too_small is not None:
            while self.screen is not too_small:
                self.pop_screen()
            self.pop_screen()

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer (and show in the footer) only the keys that mean something right now."""
        replay = self.replay is not None
        if action in ("speed", "seek"):
            return replay
        if action == "scroll_timeline":
            return len(self.screen_stack) == 1  # the main screen, nothing over it
        if action in ("scrub", "incident"):
            return replay or self.paused
        if action in ("cycle_mode", "toggle_real", "adjust", "cycle_pin"):
            return not replay
        if action == "toggle_workload":
            index = parameters[0] if parameters else 0
            return not replay and isinstance(index, int) and index < len(self._infos)
        return True

    def action_toggle_workload(self, index: int) -> None:
        """Select workload ``index``; stop it if it is running, otherwise start it."""
        if not 0 <= index < len(self._infos):
            return
        self.selected = index
        key = self._infos[index].key
        if key in self.controller.running():
            self.controller.stop(key)
        else:
            self._start(key)
        self._push()

    def action_cycle_mode(self) -> None:
        info = self._selected_info()
        if info is None or not info.modes:
            return
        current = self._mode_by_key[info.key]
        at = info.modes.index(current) if current in info.modes else -1
        mode = self._mode_by_key[info.key] = info.modes[(at + 1) % len(info.modes)]
        if info.key in self.controller.running():
            # The listing shows the new mode beside a run still going in the old one.
            self.notify(f"{info.key}: the next run uses {mode}; the one going keeps its mode",
                        timeout=4)
        self._push()

    def action_toggle_real(self) -> None:
        info = self._selected_info()
        if info is None:
            return
        params = self._params_by_key[info.key]
        if "real" not in params:
            self.notify(f"{info.key} has no real mode; it is always measured as it runs")
            return
        params["real"] = not bool(params["real"])
        self._push()

    def action_adjust(self, slot: int, direction: int) -> None:
        """Step the selected workload's live parameter ``slot`` (``[ ]`` first, ``{ }`` second).

        The new value is used by the next start, and sent at once to a run that is going.
        """
        info = self._selected_info()
        live = [p for p in info.params if p.live] if info is not None else []
        if info is None or slot >= len(live):
            name = info.key if info is not None else "this workload"
            self.notify(f"{name} has no live parameter for this key")
            return
        param = live[slot]
        params = self._params_by_key[info.key]
        value = live_step(params[param.name], param.low, param.high, direction)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        # Said as well as shown: the explanation that lists the value is often scrolled away.
        if value == params[param.name]:
            limit = "most" if direction > 0 else "least"
            self.notify(f"{param.name} = {shown}, the {limit} it can be", timeout=3)
            return
        params[param.name] = value
        running = info.key in self.controller.running()
        if running:
            try:
                self.controller.adjust(info.key, param.name, value)
            except Exception as exc:
                self.notify(f"could not change {param.name}: {exc}", severity="error")
                self._push()
                return
        self.notify(f"{param.name} = {shown}" + (" now" if running else " for the next run"),
                    timeout=3)
        self._push()

    def action_cycle_pin(self) -> None:
        """All cores → one core → all: C17 live, without restarting anything."""
        want = 1 if self.pinned is None else None
        try:
            self.pinned = self.controller.pin(want)
        except Exception as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("lab pinned to 1 core" if self.pinned else "lab may use every core")
        self._update_subtitle()

    def action_toggle_pause(self) -> None:
        if self.replay is not None:
            self.replay.toggle()
            self._update_subtitle()
            return
        self.paused = not self.paused

    def action_scrub(self, direction: int) -> None:
        """←/→: a tenth of the window back or forward; live only while paused."""
        step = self.window_s / 10 * direction
        if self.replay is not None:
            self.replay.seek(self.replay.position + step)
            self._frame()
            self._update_subtitle()
            return
        if not self.paused:
            self.notify("pause with space first; ← and → then step through the history")
            return
        earliest, latest = self._history_span()
        self.now = min(latest, max(earliest, self.now + step))
        self._update_subtitle()
        self._push()

    def _history_span(self) -> tuple[float, float]:
        """The display times the Model still holds history for."""
        latest = self.source.clock.now()
        return max(0.0, latest - self.model.history_s + self.window_s), latest

    def action_incident(self, direction: int) -> None:
        """n / N: jump to the next / previous freeze or stall (live: while paused)."""
        if self.replay is not None and direction > 0:
            if self.replay.next_incident() is None:
                self.notify("no more incidents in this recording")
            self._frame()
            self._update_subtitle()
            return
        if self.replay is None and not self.paused:
            self.notify("pause with space first; n and N then jump between incidents")
            return
        moments = sorted(
            [inc.detected for inc in self.model.incidents]
            + [stall.detected for stall in self.model.stalls]
        )
        now = self.now
        later = [t for t in moments if t > now + 1e-6]
        earlier = [t for t in moments if t < now - 1e-6]
        target = (later[0] if later else None) if direction > 0 else (
            earlier[-1] if earlier else None)
        if target is None:
            self.notify("no incident " + ("after" if direction > 0 else "before") + " this")
            return
        if self.replay is not None:
            self.replay.seek(target - self.replay.start)
            self._frame()
        else:
            self.now = target
            self._push()
        self._update_subtitle()

    def action_speed(self, direction: int) -> None:
        if self.replay is None:
            self.notify("speed changes a replay; the live view always runs at 1×")
            return
        if direction > 0:
            self.replay.faster()
        else:
            self.replay.slower()
        self._update_subtitle()

    def action_seek(self) -> None:
        if self.replay is None:
            self.notify("g seeks in a replay; live, pause with space and use ← →")
            return
        replay = self.replay

        def done(position: float | None) -> None:
            if position is not None:
                replay.seek(position)
                self._frame()
                self._update_subtitle()

        self.push_screen(SeekScreen(replay.duration, replay.position), done)

    def action_scroll_timeline(self, how: str) -> None:
        """↑ ↓ PgUp PgDn: scroll the task rows, whichever view has the focus."""
        timeline = self.timeline
        moves = {"up": timeline.scroll_up, "down": timeline.scroll_down,
                 "page_up": timeline.scroll_page_up, "page_down": timeline.scroll_page_down}
        move = moves.get(how)
        if move is not None:
            move(animate=False)

    def action_zoom_in(self) -> None:
        self.window_s = _step(self.window_s, -1)

    def action_zoom_out(self) -> None:
        self.window_s = _step(self.window_s, +1)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        elif not isinstance(self.screen, TooSmallScreen):
            self.push_screen(HelpScreen())

    def action_toggle_chart(self) -> None:
        """t: the measured sweeps and latency as a chart, or their numbers as a table."""
        self.measures.chart = not self.measures.chart
        self.notify("measured: chart" if self.measures.chart else "measured: numbers", timeout=2)
        self._push()

    def action_toggle_own(self) -> None:
        """Show or hide cpviz's own tasks (and threads): hidden, the rows are the program's."""
        shown = not self.timeline.show_own
        self.timeline.show_own = shown
        self.os_rows.show_own = shown
        self.notify("cpviz's own tasks and threads shown" if shown else
                    "cpviz's own tasks and threads hidden", timeout=3)
        self._push()

    def action_toggle_output(self) -> None:
        """Show or hide the program's own output."""
        shown = not self.output.has_class("-shown")
        self.output.set_class(shown, "-shown")
        if shown and not self.model.output:
            self.notify("no output yet: only a program run as it is (cpviz -- python app.py) "
                        "has output of its own", timeout=5)

    async def action_quit(self) -> None:
        self._close_controller()
        self.exit()

    # -- watchers -------------------------------------------------------------------------------

    def watch_paused(self, paused: bool) -> None:
        if paused:
            self.paused_at = self.now
        self._update_subtitle()
        self.refresh_bindings()

    def watch_window_s(self) -> None:
        self._update_subtitle()
        self._push()

    def watch_selected(self) -> None:
        self._push()

    def _update_subtitle(self) -> None:
        parts: list[str] = []
        replay = self.replay
        if replay is not None:
            state = "PAUSED" if replay.paused else f"{_speed(replay.speed)}"
            parts.append(
                f"REPLAY {fmt_seconds(replay.position)} of {fmt_seconds(replay.duration)} · "
                + state
            )
        elif self.paused:
            # From the moment paused at, which stays put: the live present runs on underneath,
            # so counting from it made the label grow while → stepped forward.
            behind = self.paused_at - self.now
            where = (f" · {fmt_seconds(behind)} back" if behind > 0.05 else
                     f" · {fmt_seconds(-behind)} past the pause" if behind < -0.05 else "")
            parts.append("PAUSED" + where)
        if self.recording is not None:
            status = self.recording()
            size = f"{status.bytes / 1e6:.1f} MB"
            parts.append(f"REC stopped at the cap, {size}" if status.capped else f"● REC {size}")
        if self.pinned is not None:
            parts.append(f"pinned to {self.pinned} core{'s' if self.pinned > 1 else ''}")
        parts.append(f"timeline window {fmt_window(self.window_s)}")
        text = " · ".join(parts)
        if text != self.sub_title:  # the header repaints on every assignment
            self.sub_title = text

    # -- helpers --------------------------------------------------------------------------------

    def _selected_info(self) -> WorkloadInfo | None:
        return self._infos[self.selected] if 0 <= self.selected < len(self._infos) else None

    def _start_requested(self, key: str, mode: str | None) -> None:
        index = next((i for i, info in enumerate(self._infos) if info.key == key), None)
        if index is None:
            known = ", ".join(info.key for info in self._infos)
            self.notify(f"unknown workload {key!r}; choose one of: {known}", severity="error")
            return
        self.selected = index
        modes = self._infos[index].modes
        if mode is not None and mode not in modes:
            self.notify(
                f"unknown mode {mode!r} for {key}; choose one of: {', '.join(modes)}",
                severity="error",
            )
            return
        if mode is not None:
            self._mode_by_key[key] = mode
        params = self._params_by_key[key]
        # Checked and typed once, by the command line (Workload.resolve).
        params.update(self.start_settings)
        self._start(key)

    def _start(self, key: str) -> None:
        try:
            self.controller.start(key, self._mode_by_key[key], dict(self._params_by_key[key]))
        except Exception as exc:  # the controller's message says what was wrong; keep running
            self.notify(f"could not start {key}: {exc}", severity="error")

    def _close_controller(self) -> None:
        if not self._controller_closed:
            self._controller_closed = True
            self.controller.close()

    def on_unmount(self) -> None:
        # However the app ends (q, ctrl+c, an error), the lab's threads and processes are released.
        self._close_controller()


def _speed(speed: float) -> str:
    return {0.25: "¼×", 0.5: "½×"}.get(speed, f"{speed:g}×")


def live_step(value: Any, low: Any, high: Any, direction: int) -> Any:
    """The next value of a live parameter: ±1 over small ranges, doubling or halving otherwise."""
    number = float(value)
    small = high is not None and low is not None and float(high) - float(low) <= 64
    nxt = number + direction if small else (number * 2 if direction > 0 else number / 2)
    if low is not None:
        nxt = max(float(low), nxt)
    if high is not None:
        nxt = min(float(high), nxt)
    return round(nxt) if isinstance(value, int) else nxt


def _step(window: float, direction: int) -> float:
    """The next window in WINDOWS from ``window`` in ``direction`` (clamped at the ends)."""
    if direction < 0:
        smaller = [w for w in WINDOWS if w < window]
        return smaller[-1] if smaller else WINDOWS[0]
    larger = [w for w in WINDOWS if w > window]
    return larger[0] if larger else WINDOWS[-1]
