"""The audit log on the gateway: the entries its handlers record, and ``workmesh.v1.Audit``.

An entry names the caller (tenant and subject of :func:`current_identity`; empty with
authentication off), the action and its target, the time and the caller's address (gRPC's
``context.peer()``). A submit's entry is stored with its job in one transaction
(``JobRecord.audit``); the other actions record theirs once the action has succeeded and before
the reply, so an answered call is recorded — a gateway that dies between the two loses that one
entry (README "What is audited").
"""

from __future__ import annotations

import datetime as dt
import time

from workmesh.services.core.auth import ADMIN, TOKENS_ADMIN, current_identity
from workmesh.services.core.errors import InvalidArgument, PermissionDenied, WorkmeshError, abort
from workmesh.services.gateway.store import AuditEntry, AuditLog
from workmesh.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AuditServicer", "audit_entry", "audit_message", "record_action"]

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000


def audit_entry(action: str, target: str, context, detail: str = "") -> AuditEntry:
    """The entry of `action` on `target` by the current caller of the call `context` serves."""
    identity = current_identity()
    peer = context.peer() if context is not None else ""
    return AuditEntry(
        action=action,
        target=target,
        tenant=identity.tenant if identity is not None else "",
        subject=identity.subject if identity is not None else "",
        peer=peer or "",
        at=time.time(),
        detail=detail,
    )


async def record_action(log: AuditLog | None, action: str, target: str, context, detail: str = "") -> None:
    """Record an action that has succeeded (no-op on a store without an audit log)."""
    if log is not None:
        await log.record_audit(audit_entry(action, target, context, detail))


def audit_message(entry: AuditEntry) -> admin_pb2.AuditEntry:
    out = admin_pb2.AuditEntry(
        seq=entry.seq,
        tenant=entry.tenant,
        subject=entry.subject,
        peer=entry.peer,
        action=entry.action,
        target=entry.target,
        detail=entry.detail,
    )
    out.time.FromDatetime(dt.datetime.fromtimestamp(entry.at, dt.UTC))
    return out


class AuditServicer(admin_pb2_grpc.AuditServicer):
    """Implements workmesh.v1.Audit over the job store's :class:`AuditLog`."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def ListAudit(self, request, context):
        try:
            identity = current_identity()
            tenant: str | None = request.tenant or None
            if identity is not None:
                identity.require(TOKENS_ADMIN)  # admin holds it too
                if not identity.admin:
                    if tenant is not None and tenant != identity.tenant:
                        raise PermissionDenied(
                            f"tenant: the caller may read the audit log of tenant {identity.tenant!r} only "
                            f"(other tenants need the scope {ADMIN!r})"
                        )
                    tenant = identity.tenant
            if request.limit < 0 or request.limit > MAX_LIMIT:
                raise InvalidArgument("limit", f"must be between 0 and {MAX_LIMIT}")
            if request.after_seq < 0:
                raise InvalidArgument("after_seq", "must not be negative")
            since = None
            if request.HasField("since"):
                since = request.since.seconds + request.since.nanos / 1e9
            entries = await self._log.list_audit(
                since=since, tenant=tenant, after=request.after_seq, limit=request.limit or DEFAULT_LIMIT
            )
            return admin_pb2.ListAuditResponse(entries=[audit_message(e) for e in entries])
        except WorkmeshError as exc:
            await abort(context, exc)
