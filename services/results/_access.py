"""Who may read and write which job's series in the results service (authentication on).

* WriteSeries, and DeleteSeries with ``restart``, need the write capability the gateway signed
  for a running attempt of that job (metadata ``workmesh-series-capability``); a DeleteSeries
  of a whole job needs the gateway's delete capability (its DeleteJob). Without a valid one:
  UNAUTHENTICATED with the reason; one of another job: PERMISSION_DENIED naming both jobs.
* The first accepted write of a job records its owner (tenant, subject) from the capability.
* Once an attempt of a job wrote (or cleared the job for its restart), an earlier attempt's
  capability is refused (PERMISSION_DENIED): a lost attempt still running somewhere cannot mix
  its series into its successor's. This is known per results process (in memory).
* GrantReader and RevokeReader need the gateway's ``grant`` capability of the job (its
  GrantSeriesReader/RevokeSeriesReader, which check the caller and audit).
* ListSeries and ReadSeries need a caller token (as the gateway's) with ``series:read``, then
  apply the gateway's job rules to every job named, in order, against the recorded owner:
  another tenant's job, or one without a recorded owner, is NOT_FOUND worded as a job without
  series; another subject's of the same tenant is PERMISSION_DENIED unless the caller holds
  ``jobs:manage``; ``admin`` reads everything. A comparison fails as a whole, naming the first
  job the caller may not read. A job refused by that rule alone is read through a share when
  the gateway says so (``_shared.GatewayShares``: its GetJob with the caller's token).
* The gateway's HTTP series routes apply the job rules to their caller themselves (API tokens
  included, which only the gateway can verify), then call with a ``read`` capability naming
  every job of the read instead of the caller's token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from workmesh.services.core.auth import (
    JOBS_MANAGE,
    SERIES_READ,
    AuthInterceptor,
    Identity,
    SeriesCapabilities,
    WriteGrant,
    capability_of,
    current_identity,
)
from workmesh.services.core.auth._capability import DELETE, GRANT, WRITE
from workmesh.services.core.errors import NotFound, PermissionDenied
from workmesh.services.results._shared import GatewayShares
from workmesh.services.results.stores._owners import Owners

__all__ = ["CAPABILITY_METHODS", "ResultsAuthInterceptor", "SeriesAccess"]

_MAX_REMEMBERED = 100_000  # jobs whose latest attempt is kept (an int each)
# Authenticated by the write capability (or the gateway's grant capability), not by a caller token.
CAPABILITY_METHODS = (
    "/workmesh.v1.Results/WriteSeries",
    "/workmesh.v1.Results/DeleteSeries",
    "/workmesh.v1.Results/GrantReader",
    "/workmesh.v1.Results/RevokeReader",
)
# Authenticated by a caller token, or by the gateway's read capability.
READ_METHODS = ("/workmesh.v1.Results/ListSeries", "/workmesh.v1.Results/ReadSeries")


class ResultsAuthInterceptor(AuthInterceptor):
    """The caller-token interceptor, except for reads that carry a capability instead: those
    reach the handler without an identity, and :meth:`SeriesAccess.readable` checks the
    capability (a wrong one is refused there, never let through)."""

    async def intercept_service(
        self, continuation: Callable[..., Any], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        if handler_call_details.method in READ_METHODS and capability_of(handler_call_details.invocation_metadata):
            return await continuation(handler_call_details)
        return await super().intercept_service(continuation, handler_call_details)


class SeriesAccess:
    """The access rules of the results service.

    Args:
        capabilities: verifies the gateway's write capabilities (the shared key).
        owners: the store's owner records.
        shares: asks the gateway about shared jobs; None: no sharing.
    """

    def __init__(self, capabilities: SeriesCapabilities, owners: Owners, shares: GatewayShares | None = None) -> None:
        self.capabilities = capabilities
        self.owners = owners
        self.shares = shares
        self._attempts: dict[str, int] = {}  # job -> the latest attempt that wrote or restarted

    def _current(self, grant: WriteGrant, job_id: str) -> None:
        if grant.op != WRITE:
            return
        latest = self._attempts.get(job_id, 0)
        if grant.attempt < latest:
            raise PermissionDenied(
                f"job_id: the series write capability is of attempt {grant.attempt} of job {job_id!r}, "
                f"which attempt {latest} has superseded"
            )
        self._attempts[job_id] = grant.attempt
        if len(self._attempts) > _MAX_REMEMBERED:
            del self._attempts[next(iter(self._attempts))]  # the job remembered longest

    def grant(self, context: grpc.aio.ServicerContext) -> WriteGrant:
        """The call's capability, verified but not yet checked against a job.

        Raises:
            Unauthenticated: missing, forged, malformed or expired.
        """
        return self.capabilities.decode(capability_of(context.invocation_metadata()))

    async def writing(self, grant: WriteGrant, job_id: str) -> None:
        """Check that `grant` writes `job_id`, and record the job's owner on its first write.

        Raises:
            PermissionDenied: the capability is for another job (or only deletes).
        """
        grant.check(job_id)
        self._current(grant, job_id)
        if await self.owners.get(job_id) is None:
            await self.owners.set(job_id, grant.tenant, grant.subject)

    def deleting(self, context: grpc.aio.ServicerContext, job_id: str, *, restart: bool) -> None:
        """Check a DeleteSeries: a restarting attempt clears its predecessor's series with its
        write capability; only the gateway (its delete capability) deletes a whole job.

        Raises:
            Unauthenticated: no valid capability.
            PermissionDenied: one of another job, or a write capability deleting a whole job.
        """
        grant = self.grant(context)
        grant.check(job_id, (WRITE, DELETE) if restart else (DELETE,))
        self._current(grant, job_id)

    def granting(self, context: grpc.aio.ServicerContext, job_id: str) -> None:
        """Check a GrantReader/RevokeReader: only the gateway's grant capability of `job_id`.

        Raises:
            Unauthenticated: no valid capability.
            PermissionDenied: one of another job, or for another operation.
        """
        self.grant(context).check(job_id, (GRANT,))

    async def readable(self, context: grpc.aio.ServicerContext, job_ids: Sequence[str], field: str = "job_ids") -> None:
        """Raise unless the current caller may read the series of every job in `job_ids`.

        Raises:
            Unauthenticated: a call without identity whose capability does not verify.
            PermissionDenied: no ``series:read``, or another subject's job without ``jobs:manage``;
                a capability that is not the gateway's read capability of these jobs.
            NotFound: another tenant's job, or a job without series.
        """
        identity = current_identity()
        if identity is None:  # no caller token: the gateway's read capability (the interceptor)
            self.grant(context).check_read(list(job_ids))
            return
        identity.require(SERIES_READ)
        for i, job_id in enumerate(job_ids):
            where = f"{field}[{i}]" if len(job_ids) > 1 or field == "job_ids" else field
            await self._check(identity, job_id, where, context)

    async def _check(self, identity: Identity, job_id: str, where: str, context: grpc.aio.ServicerContext) -> None:
        if identity.admin:
            return  # without reading the owner record
        owner = await self.owners.get(job_id)
        access = "hidden" if owner is None else identity.access_to(*owner)
        if access == "hidden":
            raise NotFound(f"{where}: job {job_id!r} has no series")
        if access == "denied" and self.shares is not None:
            authorization = dict(context.invocation_metadata() or ()).get("authorization", "")
            if await self.shares.readable(job_id, str(authorization)):
                return
        if access == "denied":
            raise PermissionDenied(
                f"{where}: the series of job {job_id!r} belong to another subject of tenant "
                f"{identity.tenant!r}; its owner can share the job, or ask for the scope {JOBS_MANAGE!r}"
            )
