"""GrantSeriesReader / RevokeSeriesReader: the gateway's side of external series readers.

The gateway checks the caller against the job (unknown or another tenant's job: NOT_FOUND; the
owner or ``jobs:manage``, with ``jobs:submit``/``jobs:manage`` as for DeleteJob), passes the
request to the results service registered as ``workmesh-results`` with a ``grant`` capability
of the job (authentication on), and records the action in the audit log once it succeeded
(``series.grant`` / ``series.revoke``; never the password or token). The reader name is
checked by the results service (INVALID_ARGUMENT naming ``reader`` and the rule), before
anything is created.
"""

from __future__ import annotations

import grpc

from workmesh.services.clients._errors import from_rpc_error
from workmesh.services.core.auth import CAPABILITY_METADATA
from workmesh.services.core.errors import InvalidArgument, NotFound, Unavailable
from workmesh.services.gateway._access import SHARE, visible_job
from workmesh.services.gateway._audit import record_action
from workmesh.v1 import results_pb2

__all__ = ["series_reader"]


async def series_reader(servicer, request, context, *, revoke: bool):
    """Grant (or with `revoke`, remove) an external reader of ``request.job_id``."""
    if not request.job_id:
        raise InvalidArgument("job_id", "must not be empty")
    # An external reader is a share; the scope is checked before the job is read (visible_job).
    get = servicer._store.get
    record = await visible_job(get, request.job_id, SHARE, servicer._grants) or await get(request.job_id)
    if record is None:
        raise NotFound(f"job_id: no job {request.job_id!r}")
    cleaner = servicer._delete_series
    connect = getattr(cleaner, "connect", None)
    if connect is None:
        raise Unavailable("no results service is configured for this gateway")
    client = await connect()
    try:
        capabilities = getattr(cleaner, "capabilities", None)
        metadata = ((CAPABILITY_METADATA, capabilities.granting(record.job_id)),) if capabilities else None
        try:
            if revoke:
                reply = await client.stub.RevokeReader(request, timeout=15.0, metadata=metadata)
            else:
                reply = await client.stub.GrantReader(request, timeout=15.0, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
    finally:
        await client.close()
    action = "series.revoke" if revoke else "series.grant"
    detail = f"reader {request.reader!r}"
    if isinstance(reply, results_pb2.GrantReaderResponse):
        detail += f" on {reply.store} {reply.database}"
    await record_action(servicer._audit, action, record.job_id, context, detail)
    return reply
