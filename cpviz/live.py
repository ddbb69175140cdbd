"""The live screen on an observed side: started, watched and ended in the right order.

Shared by ``cpviz`` (the lab) and ``cpviz -- python app.py`` (a program): SIGTERM quits as q
does, and the observed side is gone before the terminal is given back.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from typing import Any

from cpviz.engine.observed import ObservedLab
from cpviz.engine.source import Controller


def run_live(args: argparse.Namespace, lab: ObservedLab,
             controller: Callable[[ObservedLab], Controller], **app_options: Any) -> int:
    """Run the screen on ``lab`` until it quits; the screen's exit status."""
    from cpviz.app import CpvizApp
    from cpviz.crash import screen_status
    from cpviz.engine.source import LiveSource
    from cpviz.record_cli import finish_recording, start_recording

    recorder = start_recording(args, lab, args.argv)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        lab.start()
        app = CpvizApp(
            LiveSource(lab.stream, lab.cores),
            controller(lab),
            fps=args.fps,
            recording=(lambda: recorder.status) if recorder is not None else None,
            **app_options,
        )

        def on_term(signum: int, frame: object) -> None:
            # From the app's own thread: quit as q does (observed side first, then the screen).
            app.call_later(app.action_quit)

        signal.signal(signal.SIGTERM, on_term)
        app.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        lab.close()
        finish_recording(recorder, lab)
    return screen_status(app)
