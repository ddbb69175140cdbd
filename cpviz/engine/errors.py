"""The one error type cpviz explains instead of crashing on.

Every mistake a person can make (an unknown name, a bad value, a broken file, a program that
will not start) raises a subclass of :class:`CpvizError` whose message is the whole story in one
line. The command line catches this one type in one place, prints the line and exits with
status 2; anything else is a bug and is allowed to say so.
"""

from __future__ import annotations


class CpvizError(Exception):
    """Something wrong with what cpviz was given; the message says what and what is accepted."""


class UsageError(CpvizError):
    """A bad command line."""
