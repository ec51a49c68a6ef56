"""Fixtures shared by all tests."""

from __future__ import annotations

import os

import pytest

from tests.chaos.support import Cluster
from tests.support import Processes, processes

# Gateways the tests start as processes would otherwise all serve HTTP on the one default port
# (127.0.0.1:8080); tests of the HTTP API give their gateway a free port of its own.
os.environ.setdefault("WORKMESH_HTTP_ADDR", "off")


@pytest.fixture
def procs(tmp_path) -> Processes:
    """Start real processes in a test; every one is stopped by pid when the test ends."""
    with processes(tmp_path) as started:
        yield started


@pytest.fixture
def cluster(procs, tmp_path) -> Cluster:
    """A registry process; tests add gateways and workers (tests/chaos/support.py). Everything is stopped by pid."""
    started = Cluster(procs, tmp_path)
    try:
        yield started
    finally:
        started.close()
