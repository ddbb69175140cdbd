"""What runs inside the observed process: the lab, the tracer, the watchdog, the no-progress
detector and the agent end of the channel. Never imports Textual.

``cpviz.agent.install()`` embeds the agent in a long-running application (see
:mod:`cpviz.agent.embed`); it is loaded on first use, so the lab's process does not pay for it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("install", "Agent"):
        from cpviz.agent import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'cpviz.agent' has no attribute {name!r}")
