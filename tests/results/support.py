"""Helpers of the results tests: an in-process results server and unique job ids."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import NotFound
from workmesh.services.results import ResultsConfig, SeriesStore, create_server

HOUR = 3600 * 10**9


def new_job() -> str:
    """A job id no other test uses (the InfluxDB server is shared by the session)."""
    return f"job-{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def serving(store: SeriesStore, **config) -> AsyncIterator[ResultsClient]:
    """Run a results server on a free port over `store`; yield a client of it; stop both after."""
    server, port = create_server(ResultsConfig(listen="127.0.0.1:0", **config), store)
    await server.start()
    client = ResultsClient(f"127.0.0.1:{port}")
    client.port = port
    client.server_store = server.results_store
    client.server_local = server.results_local
    try:
        yield client
    finally:
        await client.close()
        await server.stop(0)
        if server.results_compactor is not None:
            await server.results_compactor.close()
        if server.results_local is not None:
            await server.results_local.close()
        await store.close()


async def visible(client_or_store, job_id: str) -> list:
    """What ListSeries shows of a job ([] when the job is unknown)."""
    try:
        return await client_or_store.list_series(job_id)
    except NotFound:
        return []
