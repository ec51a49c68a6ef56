"""Calling the gateway servicer in-process, as the gRPC server would, and the errors it gives.

The HTTP API does not re-implement the gateway: every route builds the gRPC request message and
calls the same :class:`~workmesh.services.gateway._servicer.GatewayServicer` method the gRPC server calls,
with a small stand-in for ``grpc.aio.ServicerContext``. A call that aborts raises
:class:`CallError` with the gRPC code and message, which the HTTP layer writes as
``google.rpc.Status`` JSON — the same code and message a gRPC client gets.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

from workmesh.services.core.errors import WorkmeshError, status_of

# google.rpc.Code → HTTP status, as grpc-gateway maps them (runtime/errors.go).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


class CallError(Exception):
    """A call ended with a gRPC status other than OK.

    Attributes:
        code: the gRPC status code.
        message: its details, exactly as a gRPC client would read them.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def of(cls, exc: BaseException) -> CallError:
        """The status a gRPC server would send for `exc` (WorkmeshError or anything else)."""
        if isinstance(exc, CallError):
            return exc
        return cls(*status_of(exc))

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def status(self) -> status_pb2.Status:
        """As ``google.rpc.Status``."""
        return status_pb2.Status(code=self.code.value[0], message=self.message)

    def json(self) -> dict:
        """``google.rpc.Status`` in protobuf's JSON mapping (code, message, details)."""
        return json_format.MessageToDict(self.status(), always_print_fields_with_no_presence=True)


def invalid(field: str, rule: str) -> CallError:
    """INVALID_ARGUMENT naming the field and the rule, worded as the gateway's own checks."""
    return CallError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {rule}")


class _Context:
    """The part of ``grpc.aio.ServicerContext`` the gateway servicer uses: ``abort``."""

    __slots__ = ()

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        raise CallError(code, details)

    def invocation_metadata(self):
        return ()

    def peer(self) -> str:
        return "http"


_CONTEXT = _Context()


async def unary(method, request):
    """Call a unary servicer method in-process; raise :class:`CallError` like the call would."""
    try:
        return await method(request, _CONTEXT)
    except CallError:
        raise
    except WorkmeshError as exc:
        raise CallError.of(exc) from exc


async def server_stream(method, request) -> AsyncGenerator:
    """Iterate a server-streaming servicer method in-process; errors as :class:`CallError`.

    Closing this iterator (e.g. when the HTTP client goes away) closes the servicer's generator,
    which runs its ``finally`` blocks and frees what the stream held.
    """
    stream = method(request, _CONTEXT)
    try:
        async for item in stream:
            yield item
    except CallError:
        raise
    except WorkmeshError as exc:
        raise CallError.of(exc) from exc
    finally:
        await stream.aclose()
