"""``python -m cpviz.agent``: the observed process (see :mod:`cpviz.agent.main`)."""

from cpviz.agent.main import entry

entry()
