"""The gRPC server side: an interceptor that authenticates every call, streams included, and
makes the caller's :class:`Identity` the current one while the handler runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from workmesh.services.core.auth._authenticator import Authenticator
from workmesh.services.core.auth._identity import Identity, reset_identity, use_identity
from workmesh.services.core.errors import WorkmeshError, abort

__all__ = ["PUBLIC_METHODS", "AuthInterceptor"]

# Answered without credentials: the health checks Consul and load balancers make, and server
# reflection (the API's shape, no data).
PUBLIC_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _authorization(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates each call with its ``authorization`` metadata before the handler runs.

    A call that does not authenticate ends with UNAUTHENTICATED and the reason; the handler
    never runs. Handlers read the caller with :func:`current_identity`.

    Args:
        authenticator: checks the bearer token.
        public: method-name prefixes served without credentials.
    """

    def __init__(self, authenticator: Authenticator, public: Sequence[str] = PUBLIC_METHODS) -> None:
        self._auth = authenticator
        self._public = tuple(public)

    async def intercept_service(
        self, continuation: Callable[..., Any], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._public):
            return handler
        header = _authorization(handler_call_details.invocation_metadata)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._wrap(handler.unary_unary, header))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._wrap(handler.stream_unary, header))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._wrap(handler.unary_stream, header))
        return handler._replace(stream_stream=self._wrap(handler.stream_stream, header))

    async def _identity(self, header: str | None, context: grpc.aio.ServicerContext) -> Identity:
        try:
            return await self._auth.authenticate(header)
        except WorkmeshError as exc:
            await abort(context, exc)
            raise  # abort raises; never reached

    def _wrap(self, behavior: Callable[..., Any], header: str | None) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                # The call runs in a task of its own: the identity set here is this call's only.
                use_identity(await self._identity(header, context))
                async for response in behavior(request, context):
                    yield response

            return stream

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = use_identity(await self._identity(header, context))
            try:
                return await behavior(request, context)
            finally:
                reset_identity(token)

        return call
