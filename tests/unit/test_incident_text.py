"""The incident line names the blocking call first and only the code that matters."""

from __future__ import annotations

from cpviz.engine.events import Frame
from cpviz.engine.model import IncidentView
from cpviz.widgets.blocking_alarm import bare_code, describe

FRAME = Frame("/x/app.py", 36, "_waiter", "time.sleep(block_s)   # blocks the loop")


def _incident(cause: str) -> IncidentView:
    return IncidentView(1, 0.5, 0.6, FRAME, "time.sleep", 7, (FRAME,), cause=cause)


def test_an_unclassified_freeze_names_its_blocking_call_first_like_a_blocking_one() -> None:
    legacy, blocking = describe(_incident("")), describe(_incident("blocking"))
    assert legacy.startswith("time.sleep at ")
    assert legacy == blocking
    assert "[blocking call" not in legacy


def test_the_code_shown_has_no_trailing_comment_or_padding() -> None:
    assert describe(_incident("")).endswith("— time.sleep(block_s)")
    assert bare_code("  f('# not a comment')  # a comment  ") == "f('# not a comment')"
    assert bare_code("call(a,  # an open bracket") == "call(a,"


def test_a_freeze_with_no_blocking_call_names_where_it_is() -> None:
    inc = IncidentView(1, 0.5, 0.6, FRAME, None, 7, (FRAME,))
    assert describe(inc).startswith("/x/app.py:36 in _waiter()")
