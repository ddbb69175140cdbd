"""The run contract: what a workload declares and what the lab offers it while it runs.

A workload is only the *work*; everything cpviz shows about it is measured by the lab's probes.
The run function gets a :class:`RunContext` that offers the lab's pools and a progress counter.
The engine knows workloads only through this contract: the catalogue is passed in, never imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from cpviz.engine.errors import CpvizError
from cpviz.engine.events import Event, Metric, Phase, SweepPoint


@dataclass(frozen=True)
class ParamInfo:
    """A workload parameter as the UI and ``cpviz list`` show it."""

    name: str
    kind: str
    default: Any
    low: Any
    high: Any
    help: str
    #: Whether it may change while a run is going.
    live: bool = False
    #: The accepted values of a choice parameter (kind ``str``); empty for numbers and flags.
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkloadInfo:
    """What the UI needs to offer a workload: its key, modes and explanation."""

    key: str
    title: str
    modes: tuple[str, ...]
    params: tuple[ParamInfo, ...]
    explanation: str


class WorkloadError(CpvizError, ValueError):
    """A bad workload name, mode, parameter or value; the message says what is accepted."""


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default and inclusive range."""

    name: str
    kind: type
    default: Any
    low: Any = None
    high: Any = None
    help: str = ""
    #: Whether the value may change while a run is going (see :meth:`RunContext.on_change`).
    live: bool = False
    #: The accepted values of a ``str`` parameter (a choice such as a job kind); empty otherwise.
    choices: tuple[str, ...] = ()

    def parse(self, text: str | Any) -> Any:
        """Turn ``text`` (from ``--set`` or the UI) into a checked value."""
        if self.kind is bool:
            if isinstance(text, bool):
                return text
            low = str(text).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise WorkloadError(f"{self.name} must be true or false, got {text!r}")
        if self.choices:
            value = str(text).strip()
            if value not in self.choices:
                raise WorkloadError(
                    f"{self.name} must be one of: {', '.join(self.choices)}; got {text!r}"
                )
            return value
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise WorkloadError(
                f"{self.name} must be {'an integer' if self.kind is int else 'a number'}"
                f" from {self.low} to {self.high}, got {text!r}"
            ) from None
        if value != value or (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):  # ``value != value``: NaN, which no range holds
            raise WorkloadError(
                f"{self.name} must be from {self.low} to {self.high}, got {text}"
            )
        return value

    def info(self) -> ParamInfo:
        return ParamInfo(self.name, self.kind.__name__, self.default, self.low, self.high,
                         self.help, self.live, self.choices)


@dataclass(frozen=True)
class Measurement:
    """Wall time, CPU and context switches over a stretch of a run, measured by the lab."""

    wall_s: float
    #: CPU seconds of cpviz and its worker processes (live and reaped) over the stretch.
    cpu_s: float
    #: Voluntary plus involuntary context switches of cpviz and its workers over the stretch.
    ctx_switches: int

    @property
    def parallelism(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class Meter:
    """Filled in when the ``measure()`` block it came from ends."""

    result: Measurement | None = None


class ProcessPoolHandle(Protocol):
    """A process pool the lab made for one run (see :meth:`RunContext.process_pool`)."""

    #: Seconds from creating the pool until every worker had answered once.
    startup_s: float
    workers: int
    method: str

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in one of the pool's workers."""
        ...


class LabServices(Protocol):
    """What the lab offers one run. Implemented by the lab; tests may pass a fake."""

    run_id: int

    def now(self) -> float:
        """The session clock."""
        ...

    def emit(self, event: Event) -> None:
        """Put an event on the stream in order with the run's task steps (lab loop only)."""
        ...

    async def in_process(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any: ...

    def measure(self) -> AbstractAsyncContextManager[Meter]: ...

    def process_pool(
        self, workers: int, method: str
    ) -> AbstractAsyncContextManager[ProcessPoolHandle]: ...

    def gauge(self, name: str, fn: Callable[[], float]) -> None: ...


class RunContext:
    """What a running workload may use. Created by the lab, used on the lab loop only."""

    def __init__(
        self,
        mode: str,
        params: Mapping[str, Any],
        progress: Callable[[int, int], None],
        services: LabServices,
        total: int,
    ) -> None:
        self.mode = mode
        self.params = dict(params)
        self._progress = progress
        self._lab = services
        self.run_id = services.run_id
        self.total = total
        self.done = 0
        #: Figures the workload measured about its *work* (e.g. bytes fetched, updates lost),
        #: merged into the result. Never timing of its own steps: the probes measure those.
        self.extra: dict[str, Any] = {}
        self._watchers: list[Callable[[str, Any], None]] = []

    def on_change(self, fn: Callable[[str, Any], None]) -> None:
        """Call ``fn(name, value)`` on the lab loop when a live parameter changes mid-run."""
        self._watchers.append(fn)

    def change(self, name: str, value: Any) -> None:
        """Set a live parameter mid-run (the lab calls this on its loop, already validated)."""
        self.params[name] = value
        for fn in list(self._watchers):
            fn(name, value)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` units of work as finished (drives the progress bar)."""
        self.done += n
        self._progress(self.done, self.total)

    def now(self) -> float:
        """The session clock, in seconds (what every event is stamped with)."""
        return self._lab.now()

    async def in_process(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the lab's shared process pool (``fn`` must be importable there)."""
        return await self._lab.in_process(fn, args)

    def process_pool(
        self, workers: int, method: str = "spawn"
    ) -> AbstractAsyncContextManager[ProcessPoolHandle]:
        """A fresh pool of ``workers`` processes started with ``method``, closed on exit.

        Its start-up (creation until every worker answered) is timed by the lab and shown as a
        ``startup`` phase of the run.
        """
        return self._lab.process_pool(workers, method)

    def measure(self) -> AbstractAsyncContextManager[Meter]:
        """Wall, CPU and context switches of a block: ``async with ctx.measure() as m``."""
        return self._lab.measure()

    def gauge(self, name: str, fn: Callable[[], float]) -> None:
        """Have the lab sample ``fn()`` (e.g. a channel's real depth) while the run lasts."""
        self._lab.gauge(name, fn)

    def metric(self, name: str, value: float) -> None:
        """Report a figure about the work now (e.g. updates lost so far)."""
        self._lab.emit(Metric(self._lab.now(), self.run_id, name, float(value)))

    def point(self, x: float, **figures: float) -> None:
        """Report one measured point of a sweep."""
        self._lab.emit(SweepPoint(self._lab.now(), self.run_id, float(x),
                                  tuple((k, float(v)) for k, v in figures.items())))

    def phase(self, name: str, start: float, end: float, detail: str = "") -> None:
        """Report a named stretch of the run, timed on the session clock."""
        self._lab.emit(Phase(end, self.run_id, name, start, detail))


RunFn = Callable[[RunContext], Awaitable[None]]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    modes: tuple[str, ...]
    params: tuple[Param, ...]
    explanation: str
    run: RunFn
    #: Units of work a run will do, for the progress bar.
    total: Callable[[str, Mapping[str, Any]], int]
    #: The mode whose wall time is the baseline for speedups, if any.
    serial_mode: str | None = None
    #: Serial wall time that follows exactly from the parameters (I/O: N × L), if any.
    exact_serial: Callable[[Mapping[str, Any]], tuple[float, str] | None] | None = None
    #: Refuses, before the run starts, settings this machine cannot honour (WorkloadError).
    check: Callable[[str, Mapping[str, Any]], None] | None = None

    def info(self) -> WorkloadInfo:
        return WorkloadInfo(self.key, self.title, self.modes,
                            tuple(p.info() for p in self.params), self.explanation)

    def live_value(self, name: str, value: Any) -> Any:
        """``value`` parsed for live parameter ``name``; WorkloadError if it cannot change."""
        param = next((p for p in self.params if p.name == name), None)
        if param is None or not param.live:
            live = [p.name for p in self.params if p.live]
            raise WorkloadError(
                f"{name!r} cannot change while {self.key} runs; live parameters: "
                + (", ".join(live) or "none")
            )
        return param.parse(value)

    def resolve(
        self, mode: str | None, settings: Mapping[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Check a mode and ``key=value`` settings; return the mode and full parameters."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise WorkloadError(
                f"unknown mode {mode!r} for {self.key}; choose one of: {', '.join(self.modes)}"
            )
        values = {p.name: p.default for p in self.params}
        by_name = {p.name: p for p in self.params}
        for name, raw in (settings or {}).items():
            param = by_name.get(name)
            if param is None:
                raise WorkloadError(
                    f"unknown parameter {name!r} for {self.key}; accepted: "
                    + ", ".join(by_name)
                )
            values[name] = param.parse(raw)
        if self.check is not None:
            self.check(mode, values)
        return mode, values


