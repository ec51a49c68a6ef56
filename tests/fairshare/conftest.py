"""Fair-share end-to-end fixtures: real processes, and PostgreSQL for the replica test."""

from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
