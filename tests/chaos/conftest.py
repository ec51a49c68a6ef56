"""Chaos-test fixtures: a cluster of real processes (stopped by pid afterwards) and PostgreSQL."""

from __future__ import annotations

from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
