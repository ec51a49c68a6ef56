"""Fixtures of the step tests: a cluster of real processes (registry, gateways, workers), each
stopped by pid when the test ends, even on failure (the chaos tests' :class:`Cluster`)."""

from __future__ import annotations

import pytest

from tests.chaos.support import Cluster


@pytest.fixture
def cluster(procs, tmp_path):
    """A registry process; tests add gateways and workers."""
    started = Cluster(procs, tmp_path)
    try:
        yield started
    finally:
        started.close()
