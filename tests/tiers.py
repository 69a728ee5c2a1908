"""The `slow` tier: what trains a real model, spawns a server, browser or Ray, or reads ../shared/data.

`python -m pytest -m "not slow"` is the fast loop while working; README's test command runs everything. A test is
slow when it is marked itself (`@pytest.mark.slow`, or `pytestmark` for a whole module), when it lives in
tests/integration/ or tests/browser/, or when it uses a fixture marked with `@slow_fixture` (directly or through other
fixtures): conftest.py applies the marker at collection.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_FOLDERS = {"integration", "browser"}


def slow_fixture(func):
    """Mark a fixture function (under @pytest.fixture) as slow: every test that uses it becomes `slow`."""
    func.slow = True
    return func


def uses_slow_fixture(item: pytest.Item) -> bool:
    """Does the test use, directly or through other fixtures, a fixture marked by slow_fixture()?"""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(getattr(defs[-1].func, "slow", False) for defs in info.name2fixturedefs.values() if defs)


def is_slow(item: pytest.Item) -> bool:
    """The rule in the module docstring."""
    return (
        item.get_closest_marker("slow") is not None
        or Path(str(item.path)).parent.name in SLOW_FOLDERS
        or uses_slow_fixture(item)
    )
