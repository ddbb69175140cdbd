"""Where the tests' files are, wherever a test module sits."""

from __future__ import annotations

from pathlib import Path

#: The checkout's root.
ROOT = Path(__file__).resolve().parent.parent
#: Recordings and exports kept for the tests (``tests/fixtures/make.sh`` makes them).
FIXTURES = ROOT / "tests" / "fixtures"
