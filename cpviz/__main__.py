"""``python -m cpviz``: the same as the ``cpviz`` command."""

import sys

from cpviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
