"""Fixtures of the notification tests: the chaos tests' cluster of real processes, and PostgreSQL."""

from tests.chaos.conftest import cluster  # noqa: F401 - fixture
from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
