"""Fuzz-suite fixtures: the hypothesis profile of the running test; long profiles opt-in."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.fuzz.profiles import LONG_MARKER, profile_for


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The long profiles take minutes each: they run only when asked for by marker expression.
    if LONG_MARKER in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason=f"long fuzz profile: select it with -m {LONG_MARKER}")
    for item in items:
        if item.get_closest_marker(LONG_MARKER):
            item.add_marker(skip)


@pytest.fixture
def fuzz_profile(request: pytest.FixtureRequest) -> settings:
    """The hypothesis settings for this test: ``long`` if marked ``fuzz_long``, else ``quick``."""
    return profile_for(request.node)
