"""The client side: send a bearer token with every call of a channel."""

from __future__ import annotations

from typing import Any

import grpc

__all__ = ["bearer_interceptors", "with_bearer"]


class _Bearer:
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "<bearer token interceptor>"  # never the token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*[(k, v) for k, v in (details.metadata or ()) if k != "authorization"])
        metadata.add(*self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# One class per kind of call: grpc.aio files an interceptor under the first kind it implements only.
class _UnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator) -> Any:
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator) -> Any:
        return await continuation(self._details(details), request_iterator)


def bearer_interceptors(token: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for ``grpc.aio.*_channel(..., interceptors=...)`` that send
    ``authorization: Bearer <token>`` with every call; none for no token."""
    if not token:
        return []
    return [kind(token) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


class _SyncBearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    # grpc.intercept_channel (the blocking API) takes one interceptor for every kind of call.
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "<bearer token interceptor>"

    def _details(self, details):
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != "authorization"] + [self._header]
        return _SyncDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _SyncDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression) -> None:
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


def with_bearer(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """A blocking-API channel that sends ``authorization: Bearer <token>`` with every call
    (`channel` itself for no token)."""
    return grpc.intercept_channel(channel, _SyncBearer(token)) if token else channel
