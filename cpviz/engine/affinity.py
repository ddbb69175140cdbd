"""Which cores a pinned lab may use (C17: with one core there is no parallelism).

Shared by the viewer, which checks ``--cores`` and the ``c`` key before anything runs, and the
observed side, which applies them.
"""

from __future__ import annotations

import os


def pinned_cpus(cores: int, what: str = "--cores") -> set[int]:
    """The first ``cores`` CPUs this process may run on; ValueError, saying what is accepted,
    for too many or too few, or where the platform has no CPU affinity."""
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError(
            f"{what} needs CPU affinity, which this platform does not offer "
            "(Linux and Windows have it; macOS does not)"
        )
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise ValueError(f"--cores must be from 1 to {len(allowed)}, got {cores}")
    return set(allowed[:cores])
