"""The catalogue: every workload cpviz ships, in key order, and lookups by name."""

from __future__ import annotations

from cpviz.engine.contract import (
    LabServices,
    Measurement,
    Meter,
    Param,
    ProcessPoolHandle,
    RunContext,
    RunFn,
    Workload,
    WorkloadError,
)

__all__ = [
    "LabServices",
    "Measurement",
    "Meter",
    "Param",
    "ProcessPoolHandle",
    "RunContext",
    "RunFn",
    "Workload",
    "WorkloadError",
    "catalogue",
    "find",
    "parse_settings",
]


def catalogue() -> tuple[Workload, ...]:
    """Every workload, in the order keys 1–9 and ``cpviz list`` use."""
    from cpviz.workloads import (
        amdahl,
        blocking,
        cpu,
        deadlock,
        io,
        oversubscribe,
        pipeline,
        server,
        shared_state,
    )

    return (
        io.WORKLOAD,
        cpu.WORKLOAD,
        blocking.WORKLOAD,
        pipeline.WORKLOAD,
        shared_state.WORKLOAD,
        deadlock.WORKLOAD,
        oversubscribe.WORKLOAD,
        amdahl.WORKLOAD,
        server.WORKLOAD,
    )


def find(key: str) -> Workload:
    for w in catalogue():
        if w.key == key:
            return w
    raise WorkloadError(
        f"unknown workload {key!r}; choose one of: {', '.join(w.key for w in catalogue())}"
    )


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["n=10", "real=true"]`` → ``{"n": "10", "real": "true"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise WorkloadError(f"--set takes key=value, got {pair!r}")
        out[name.strip()] = value.strip()
    return out


def lab_catalogue(user: str | None = None) -> tuple[Workload, ...]:
    """What the observed process's lab offers: the catalogue, and the user's code if named.

    The viewer names this function to the observed process (``cpviz.agent.main``), so neither
    the engine nor the agent ever imports the workloads themselves.
    """
    if user is None:
        return catalogue()
    from cpviz.workloads.user import load_user_workload

    return (*catalogue(), load_user_workload(user))
