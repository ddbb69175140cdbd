"""Everything under tests/live starts real processes and workloads: marked, so a quick pass can
leave them out with ``-m "not live"``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/live/" in str(item.path):
            item.add_marker(pytest.mark.live)
