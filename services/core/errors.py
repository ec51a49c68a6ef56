"""The one exception hierarchy of workmesh, and its mapping to gRPC status codes.

Every error a service raises on purpose is a :class:`WorkmeshError`; the gRPC layer turns it
into a status with :func:`status_of` — the only place where that mapping lives — and a client
turns a failed call back into one with :func:`from_rpc_error`. Handler code
raises :class:`ApplicationError` (not retried) or :class:`RetryableError` (retried on another
attempt, within the type's attempt budget).
"""

from __future__ import annotations

import grpc


class WorkmeshError(Exception):
    """Root of all workmesh errors.

    Attributes:
        code: the gRPC status code this error maps to.
        retryable: whether the same request may succeed when tried again.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(WorkmeshError):
    """A request field breaks a rule; the message names the field and the rule."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(WorkmeshError):
    """An unknown workflow type, job or series."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(WorkmeshError):
    """What the request would create exists already (e.g. an external reader of a job)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(WorkmeshError):
    """The request does not fit the current state (e.g. cancelling a finished job)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(WorkmeshError):
    """A limit was reached (sizes, capacity, quotas)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(WorkmeshError):
    """A dependency cannot be reached right now; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE
    retryable = True


# What a draining worker answers an Execute with (UNAVAILABLE): the gateway knows by it that the
# attempt never started there, so it does not count against the job's attempts.
WORKER_DRAINING = "worker is draining: it takes no new jobs"


class Unauthenticated(WorkmeshError):
    """The caller presented no credentials, or credentials that do not verify.

    The message says why (expired, wrong audience, unknown key id, ...) and never contains the
    credential itself.
    """

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(WorkmeshError):
    """The caller is known but may not do this; the message names the missing scope or grant."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ApplicationError(WorkmeshError):
    """An error raised by workflow handler code. Not retried unless ``retryable=True``.

    Args:
        message: what went wrong, shown to the user.
        code: a short machine-readable code, e.g. ``"BAD_INPUT_DATA"``.
        retryable: run the job again (on any instance) within the type's attempt budget.
    """

    code = grpc.StatusCode.ABORTED

    def __init__(self, message: str, *, code: str = "HANDLER_ERROR", retryable: bool = False) -> None:
        super().__init__(message)
        self.error_code = code
        self.retryable = retryable


class RetryableError(ApplicationError):
    """A handler error worth another attempt (a transient failure of something it depends on)."""

    def __init__(self, message: str, *, code: str = "RETRYABLE_ERROR") -> None:
        super().__init__(message, code=code, retryable=True)


# Status details travel in a trailer that clients refuse beyond 16 KiB (and non-ASCII is sent
# percent-encoded, 3 bytes per byte): a message that quotes a client's huge value is cut.
MAX_DETAILS_BYTES = 1024


def _capped(message: str) -> str:
    raw = message.encode()
    if len(raw) <= MAX_DETAILS_BYTES:
        return message
    kept = raw[:MAX_DETAILS_BYTES].decode(errors="ignore")
    return f"{kept}… ({len(message) - len(kept)} more characters left out)"


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and details for an exception raised while serving a call."""
    if isinstance(exc, WorkmeshError):
        return exc.code, _capped(exc.message)
    return grpc.StatusCode.INTERNAL, _capped(f"internal error: {type(exc).__name__}: {exc}")


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """Abort an async gRPC call with the status that `exc` maps to (never returns)."""
    code, details = status_of(exc)
    await context.abort(code, details)


_BY_CODE: dict[grpc.StatusCode, type[WorkmeshError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def from_rpc_error(exc: grpc.aio.AioRpcError) -> WorkmeshError:
    """The workmesh error for a failed call (INVALID_ARGUMENT keeps its field and rule).

    UNAUTHENTICATED and PERMISSION_DENIED become :class:`Unauthenticated` and
    :class:`PermissionDenied`, so a caller can tell a missing or bad token from a missing scope
    or grant without looking at status codes.
    """
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, sep, rule = details.partition(": ")
        return InvalidArgument(field, rule) if sep else InvalidArgument("request", details)
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(details)
    error = WorkmeshError(f"{code.name}: {details}")
    error.code = code
    return error
