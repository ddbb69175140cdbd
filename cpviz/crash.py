"""A crash is a bug in cpviz: it ends with one line and a non-zero status, never a traceback
over the user's terminal and never status 0.

The traceback is not thrown away: it goes to a file whose name the line gives, so a bug report
can carry it. Both the command line (any exception that is not a
:class:`~cpviz.engine.errors.CpvizError`) and the screens (an exception inside Textual, which
would otherwise print a page of traceback and let the command exit 0; see
:class:`cpviz.app.CrashLine`) end here. Standard library only: every command imports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Any

#: Exit status of a crash (bad input is 2; an interrupt 130).
EXIT_CRASH = 1
#: Exit statuses as shells report them: 128 + SIGINT (Ctrl+C), 128 + SIGTERM.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(Exception):
    """SIGTERM, raised in the main thread so a command ends as after Ctrl+C: every run
    stopped, the observed side gone, the terminal restored, and what was measured said."""


def terminate(signum: int, frame: object) -> None:
    """The SIGTERM handler that raises :class:`Terminated`."""
    raise Terminated


def report(error: BaseException) -> str:
    """Save ``error``'s traceback to a file; return the one line that says what and where."""
    text = "".join(traceback.format_exception(error))
    where = ""
    try:
        fd, path = tempfile.mkstemp(prefix="cpviz-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        where = f"; the traceback is in {path}"
    except OSError:
        where = " (its traceback could not be saved)"
    detail = str(error).strip().splitlines()
    what = type(error).__name__ + (f": {detail[0][:200]}" if detail else "")
    return f"cpviz: internal error: {what} (a bug in cpviz{where})"


def screen_status(app: Any) -> int:
    """The exit status of a screen that has closed, saying so in one line if it crashed."""
    crash: str | None = getattr(app, "crash", None)
    if crash is not None:
        print(crash, file=sys.stderr)
        return EXIT_CRASH
    code: int | None = app.return_code
    return code or 0
