"""Fixtures of the notification tests: PostgreSQL (the cluster of real processes is in tests/conftest.py)."""

from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
