"""Turning gRPC errors from the results service back into workmesh errors (client side)."""

from __future__ import annotations

import grpc

from workmesh.services.core import errors

_BY_CODE: dict[grpc.StatusCode, type[errors.WorkmeshError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
}


def from_rpc_error(exc: grpc.aio.AioRpcError) -> errors.WorkmeshError:
    """The workmesh error for a failed call (INVALID_ARGUMENT keeps its field and rule).

    UNAUTHENTICATED and PERMISSION_DENIED become :class:`~workmesh.services.core.errors.Unauthenticated`
    and :class:`~workmesh.services.core.errors.PermissionDenied`, so a caller can tell a missing or
    bad token from a missing scope or grant without looking at status codes.
    """
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, sep, rule = details.partition(": ")
        return errors.InvalidArgument(field, rule) if sep else errors.InvalidArgument("request", details)
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(details)
    error = errors.WorkmeshError(f"{code.name}: {details}")
    error.code = code
    return error
