"""``python -m cpviz``: the same as the ``cpviz`` command."""

from cpviz.cli import entry

if __name__ == "__main__":
    entry()
