"""Where the Model's events come from, and how the UI asks for work to be done.

The app sees a :class:`Source` (events to fold) and a :class:`Controller` (start and stop
workloads). The live lab provides both; tests and screenshots provide a :class:`ScriptedSource`
with a manual clock and a :class:`ScriptedController` that only records what was asked, so nothing
they draw depends on the machine they run on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cpviz.engine.clock import Clock
from cpviz.engine.contract import WorkloadInfo
from cpviz.engine.events import Event
from cpviz.engine.stream import EventStream


class Source(Protocol):
    """Events for the Model, on one clock."""

    clock: Clock
    #: Logical CPUs the events describe.
    cores: int

    def poll(self) -> list[Event]:
        """Everything new since the last poll."""
        ...


class Controller(Protocol):
    """Starts and stops workloads. Every method returns at once and is safe from the UI thread."""

    def workloads(self) -> Sequence[WorkloadInfo]: ...

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        """Start a run; returns its run id."""
        ...

    def stop(self, key: str) -> None:
        """Stop every run of workload ``key``."""
        ...

    def running(self) -> set[str]:
        """Keys of the workloads with a run in progress."""
        ...

    def adjust(self, key: str, name: str, value: Any) -> Any:
        """Change a live parameter of a running workload; returns the value as parsed."""
        ...

    def pin(self, cores: int | None) -> int | None:
        """Pin the lab to the first ``cores`` CPUs (None: all); ValueError where impossible."""
        ...

    def close(self) -> None:
        """Stop everything and release threads and processes."""
        ...


class LiveSource:
    """The lab's stream, as a Source."""

    def __init__(self, stream: EventStream, cores: int) -> None:
        self.stream = stream
        self.clock = stream.clock
        self.cores = cores

    def poll(self) -> list[Event]:
        return self.stream.drain()


def event_time(ev: Event) -> float:
    """The moment an event describes; a step counts when it ends (that is when it is known)."""
    t: float | None = getattr(ev, "t", None)
    if t is None:
        t = float(getattr(ev, "end", 0.0))
    return t


class ScriptedSource:
    """Releases a fixed list of events as its (manual) clock passes their times."""

    def __init__(self, events: Iterable[Event], clock: Clock, cores: int) -> None:
        self.clock = clock
        self.cores = cores
        self._events = sorted(events, key=event_time)
        self._next = 0

    def poll(self) -> list[Event]:
        now = self.clock.now()
        start = self._next
        end = start
        while end < len(self._events) and event_time(self._events[end]) <= now:
            end += 1
        self._next = end
        return self._events[start:end]


@dataclass
class ScriptedController:
    """A controller that runs nothing and remembers what it was asked to do."""

    infos: Sequence[WorkloadInfo]
    calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    _next_run: int = 1

    def workloads(self) -> Sequence[WorkloadInfo]:
        return self.infos

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        self.calls.append(("start", key, mode, dict(params)))
        self.active.add(key)
        run_id = self._next_run
        self._next_run += 1
        return run_id

    def stop(self, key: str) -> None:
        self.calls.append(("stop", key, "", {}))
        self.active.discard(key)

    def running(self) -> set[str]:
        return set(self.active)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        self.calls.append(("adjust", key, name, {name: value}))
        return value

    def pin(self, cores: int | None) -> int | None:
        self.calls.append(("pin", "", "", {"cores": cores}))
        return cores

    def close(self) -> None:
        self.calls.append(("close", "", "", {}))
        self.active.clear()
