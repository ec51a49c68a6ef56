"""Store fixtures: the same tests run on every JobStore adapter.

``backend`` is a factory of stores on one database: calling it twice gives two stores on
the same data (two gateway replicas). Each test body is a coroutine run by :func:`run`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.support import run  # noqa: F401 - the store tests import it from here

# "sqlite-gateway": the store as the gateway opens it (exclusive: its writes run on the event
# loop and WatchJob reads what it wrote from memory).
BACKENDS = ("memory", "sqlite", "sqlite-gateway", "postgres")


class Backend:
    """Makes stores of one kind on one database."""

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name = name
        self._factory = factory

    def __call__(self) -> Any:
        return self._factory()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Any]:
        """A started store, closed at the end."""
        store = self()
        if hasattr(store, "start"):
            await store.start()
        try:
            yield store
        finally:
            await store.close()

    def needs(self, store: Any, *methods: str) -> None:
        """Skip when the adapter lacks an (optional, newer) part of the protocol."""
        missing = [m for m in methods if not hasattr(store, m)]
        if missing:
            pytest.skip(f"{type(store).__name__} does not implement {', '.join(missing)} yet")


def _backend(name: str, request: pytest.FixtureRequest, tmp_path) -> Backend:
    if name == "memory":
        try:
            from workmesh.services.gateway.store._memory import MemoryJobStore
        except ImportError:
            pytest.skip("MemoryJobStore (services/gateway/store/_memory.py) is not written yet")
        shared = MemoryJobStore()
        return Backend("memory", lambda: shared)  # one process: "two replicas" share the store
    from workmesh.services.gateway.store.sql._store import SqlJobStore

    if name == "sqlite-gateway":
        # The file belongs to one store at a time (a lock file says so): "two replicas" are
        # one open store, as with the memory store; a closed one is reopened.
        url = f"sqlite:///{tmp_path}/jobs.db"
        current: list[SqlJobStore] = []

        def gateway_store() -> SqlJobStore:
            if not current or current[-1].closed:
                current.append(SqlJobStore(url, retry_for=30.0, exclusive=True))
            return current[-1]

        return Backend(name, gateway_store)
    url = f"sqlite:///{tmp_path}/jobs.db" if name == "sqlite" else request.getfixturevalue("postgres_url")
    return Backend(name, lambda: SqlJobStore(url, retry_for=30.0))


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    """A store factory per adapter: memory, SQLite file, PostgreSQL (fresh database)."""
    return _backend(request.param, request, tmp_path)


@pytest.fixture(params=("sqlite", "postgres"))
def sql_backend(request, tmp_path) -> Backend:
    """The SQL adapters only (durability across store instances, migrations, group commit)."""
    return _backend(request.param, request, tmp_path)
