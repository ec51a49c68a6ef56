"""Chaos-test fixtures: a cluster of real processes (stopped by pid afterwards) and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.chaos.support import Cluster
from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures


@pytest.fixture
def cluster(procs, tmp_path):
    """A registry process; tests add gateways and workers. Everything is stopped by pid."""
    started = Cluster(procs, tmp_path)
    try:
        yield started
    finally:
        started.close()
