"""Authentication of the HTTP API: the same bearer tokens as gRPC, checked by the same
:class:`~workmesh.services.core.auth.Authenticator`, and the caller made current for the
servicer call the route makes (so the servicer's checks apply to HTTP as to gRPC)."""

from __future__ import annotations

from aiohttp import web

from workmesh.services.core.auth import Authenticator, reset_identity, use_identity
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.http._calls import CallError

__all__ = ["authenticate"]

# Served without credentials: the API's shape, and the console's own files (it sends the token
# with its API calls).
_PUBLIC = ("/v1/openapi.json",)


def authenticate(authenticator: Authenticator):
    """An aiohttp middleware: every ``/v1/`` route needs ``Authorization: Bearer <token>``."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not request.path.startswith("/v1/") or request.path in _PUBLIC:
            return await handler(request)
        try:
            identity = await authenticator.authenticate(request.headers.get("Authorization"))
        except WorkmeshError as exc:
            raise CallError.of(exc) from None
        token = use_identity(identity)
        try:
            return await handler(request)
        finally:
            reset_identity(token)

    return middleware
