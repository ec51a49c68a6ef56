"""GrantReader / RevokeReader: external readers of one job's series (``workmesh series grant``).

* InfluxDB store: a user with READ on the job's database only (see
  :mod:`workmesh.services.results.stores._influx_readers`); the reply holds its password, the
  only time it is shown. Revoking drops the user; deleting the job drops all of its readers.
* Parquet store: an expiring read token — a series capability with ``op`` ``read`` naming this
  one job (and the reader), signed with ``WORKMESH_SERIES_KEY`` like the attempts' write
  capabilities — for this service's ListSeries and ReadSeries (metadata
  ``workmesh-series-capability``). It cannot be revoked: it stops working at its expiry, so keep
  it short. It needs authentication on (with it off every caller reads every series anyway).
"""

from __future__ import annotations

import time

from workmesh.services.clients._model import check_job_id
from workmesh.services.core.auth import SeriesCapabilities
from workmesh.services.core.auth._capability import READ
from workmesh.services.core.errors import FailedPrecondition, InvalidArgument
from workmesh.services.results.stores._influx import InfluxStore
from workmesh.services.results.stores._influx_readers import check_reader
from workmesh.services.results.stores._owners import Owners
from workmesh.services.results.stores._tombstones import TombstonedStore, deleted_error
from workmesh.v1 import results_pb2

__all__ = ["DEFAULT_TTL_S", "MAX_TTL_S", "ReaderGrants"]

DEFAULT_TTL_S = 3600
MAX_TTL_S = 30 * 24 * 3600


class ReaderGrants:
    """Adds and removes the external readers of a store's jobs.

    Args:
        store: the served store.
        capabilities: signs Parquet read tokens (None with authentication off).
        owners: the jobs' owner records (put into a read token), None with authentication off.
    """

    def __init__(self, store: TombstonedStore, capabilities: SeriesCapabilities | None, owners: Owners | None) -> None:
        self.store = store
        self.capabilities = capabilities
        self.owners = owners

    async def _live(self, job_id: str) -> None:
        if await self.store.tombstones.contains(job_id):
            raise deleted_error(job_id)

    async def grant(self, request: results_pb2.GrantReaderRequest) -> results_pb2.GrantReaderResponse:
        """Raises InvalidArgument, NotFound (no series), AlreadyExists, FailedPrecondition."""
        job_id = check_job_id(request.job_id)
        reader = check_reader(request.reader)
        ttl = request.ttl_seconds or DEFAULT_TTL_S
        if not 1 <= ttl <= MAX_TTL_S:
            raise InvalidArgument("ttl_seconds", f"must be between 1 and {MAX_TTL_S} (30 days); 0 means 1 hour")
        await self._live(job_id)
        inner = self.store.store
        database = self.store.database(job_id)
        if isinstance(inner, InfluxStore):
            user, password = await inner.readers.grant(job_id, reader)
            return results_pb2.GrantReaderResponse(
                store=inner.kind, host=inner.host, database=database, username=user, password=password
            )
        if self.capabilities is None:
            raise FailedPrecondition(
                "a read token needs authentication on (WORKMESH_AUTH=on with WORKMESH_SERIES_KEY); "
                "with it off every caller reads every series without one"
            )
        await self.store.list_series(job_id)  # NotFound when the job has no series
        owner = (await self.owners.get(job_id) if self.owners is not None else None) or ("", "")
        now = time.time()
        token = self.capabilities.issue(
            job_id, 0, tenant=owner[0], subject=owner[1], op=READ, lifetime=ttl, now=now, jobs=[job_id], reader=reader
        )
        return results_pb2.GrantReaderResponse(
            store=self.store.kind, host=self.store.host, database=database, token=token, expires_at=int(now + ttl)
        )

    async def revoke(self, request: results_pb2.RevokeReaderRequest) -> results_pb2.RevokeReaderResponse:
        """Raises InvalidArgument, NotFound (no such reader), FailedPrecondition (Parquet)."""
        job_id = check_job_id(request.job_id)
        reader = check_reader(request.reader)
        await self._live(job_id)
        inner = self.store.store
        if not isinstance(inner, InfluxStore):
            raise FailedPrecondition(
                "reader: a read token of a Parquet store cannot be revoked; it stops working at its "
                "expiry (grant short-lived ones: ttl_seconds)"
            )
        await inner.readers.revoke(job_id, reader)
        return results_pb2.RevokeReaderResponse()
