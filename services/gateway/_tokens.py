"""``workmesh.v1.TokenAdmin``: create, list and revoke API tokens in the job store.

With authentication on, ``tokens:admin`` manages the tokens of the caller's own tenant and can
give a token only scopes the caller holds itself (never ``admin``); ``admin`` manages every
tenant's. Another tenant's token is NOT_FOUND, as a token that does not exist.
"""

from __future__ import annotations

import datetime as dt
import time

from workmesh.services.core.auth import (
    ADMIN,
    TOKENS_ADMIN,
    Identity,
    TokenRecord,
    TokenStore,
    check_scopes,
    current_identity,
    new_token,
)
from workmesh.services.core.errors import InvalidArgument, NotFound, PermissionDenied, WorkmeshError, abort
from workmesh.services.gateway._audit import record_action
from workmesh.services.gateway.store import AuditLog
from workmesh.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["TokenAdminServicer", "token_message"]


def token_message(record: TokenRecord) -> admin_pb2.ApiToken:
    """A stored token as the API shows it (never its hash)."""
    out = admin_pb2.ApiToken(
        token_id=record.token_id,
        tenant=record.tenant,
        name=record.name,
        scopes=list(record.scopes),
        created_by=record.created_by,
    )
    out.created_at.FromDatetime(dt.datetime.fromtimestamp(record.created_at, dt.UTC))
    if record.revoked_at is not None:
        out.revoked_at.FromDatetime(dt.datetime.fromtimestamp(record.revoked_at, dt.UTC))
    return out


def _caller() -> Identity | None:
    identity = current_identity()
    if identity is not None:
        identity.require(TOKENS_ADMIN)
    return identity


def _tenant(identity: Identity | None, requested: str) -> str | None:
    """The tenant a call acts on (None: every tenant, for listing with authentication off)."""
    if identity is None:
        return requested or None
    if requested and requested != identity.tenant and not identity.admin:
        raise PermissionDenied(
            f"tenant: the caller may manage the tokens of tenant {identity.tenant!r} only "
            f"(other tenants need the scope {ADMIN!r})"
        )
    return requested or identity.tenant


class TokenAdminServicer(admin_pb2_grpc.TokenAdminServicer):
    """Implements workmesh.v1.TokenAdmin over a :class:`TokenStore` (the job store).

    Args:
        store: where the tokens are.
        audit: where creating and revoking a token is recorded (the job store's audit log).
    """

    def __init__(self, store: TokenStore, audit: AuditLog | None = None) -> None:
        self._store = store
        self._audit = audit

    async def CreateToken(self, request, context):
        try:
            identity = _caller()
            tenant = _tenant(identity, request.tenant)
            if tenant is None:
                raise InvalidArgument("tenant", "must not be empty")
            scopes = check_scopes(request.scopes)
            if identity is not None and not identity.admin:
                for scope in scopes:
                    if scope == ADMIN or not identity.has(scope):
                        raise PermissionDenied(
                            f"scopes: the caller cannot give a token the scope {scope!r}, which it does not hold itself"
                        )
            plain, record = new_token(
                tenant, request.name, scopes, created_by=identity.subject if identity is not None else ""
            )
            await self._store.create_token(record)
            detail = f"{record.name!r} of tenant {record.tenant!r}: {','.join(record.scopes)}"
            await record_action(self._audit, "token.create", record.token_id, context, detail)
            return admin_pb2.CreateTokenResponse(token=plain, info=token_message(record))
        except WorkmeshError as exc:
            await abort(context, exc)

    async def ListTokens(self, request, context):
        try:
            tenant = _tenant(_caller(), request.tenant)
            return admin_pb2.ListTokensResponse(
                tokens=[token_message(r) for r in await self._store.list_tokens(tenant)]
            )
        except WorkmeshError as exc:
            await abort(context, exc)

    async def RevokeToken(self, request, context):
        try:
            identity = _caller()
            if not request.token_id:
                raise InvalidArgument("token_id", "must not be empty")
            unknown = NotFound(f"token_id: no token {request.token_id!r}")
            record = await self._store.find_token(request.token_id)
            if record is None or (identity is not None and not identity.admin and record.tenant != identity.tenant):
                raise unknown
            revoked = await self._store.revoke_token(record.token_id, time.time())
            if revoked is None:  # deleted meanwhile
                raise unknown
            detail = f"{record.name!r} of tenant {record.tenant!r}"
            await record_action(self._audit, "token.revoke", record.token_id, context, detail)
            return token_message(revoked)
        except WorkmeshError as exc:
            await abort(context, exc)
