"""Fixtures shared by all tests."""

from __future__ import annotations

import pytest

from tests.support import Processes, processes


@pytest.fixture
def procs(tmp_path) -> Processes:
    """Start real processes in a test; every one is stopped by pid when the test ends."""
    with processes(tmp_path) as started:
        yield started
