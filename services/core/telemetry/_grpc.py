"""W3C trace context over gRPC metadata: grpc.aio server and client interceptors, plus two helpers
that carry a job's trace without them.

Why our own interceptors rather than opentelemetry-instrumentation-grpc (0.66b2, a beta, not
tried here against grpcio 1.85): ~250 lines and no further dependency (it brings the
instrumentation framework and wrapt); they return the real call object, so ``read()``,
``cancel()``, ``code()`` and trailing metadata keep working on every streaming shape (tests cover
unary, server-, client- and bidi-streaming, and a client cancelling mid-stream); they use the
provider of :mod:`._tracing`, which tests and multi-service processes can reconfigure; and when
nothing is exported the factories return no interceptors at all, because grpc.aio's interceptor
machinery costs tens of microseconds per RPC even when idle. On the job path
:func:`trace_metadata` and :func:`rpc_parent` still carry the trace then (for log correlation).
Health checks and reflection are not traced: Consul checks every instance each second and those
spans would bury the job traces.

Server side: one SERVER span per RPC, parented to the caller's ``traceparent``, current while the
handler runs (a streaming handler's whole stream included). Client side: one CLIENT span per RPC,
ended when the call finishes, whose context replaces any ``traceparent`` in the request metadata.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from workmesh.services.core.telemetry._tracing import ATTR_SERVICE, IdOnlyTracerProvider, get_tracer, tracer_provider

TRACER_NAME = "workmesh.grpc"
DEFAULT_EXCLUDE: tuple[str, ...] = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ATTR_GRPC_STATUS = "rpc.grpc.status_code"


def _rpc_attributes(method: str, service: str | None) -> dict[str, Any]:
    # "/workmesh.v1.Worker/Execute" -> rpc.service "workmesh.v1.Worker", rpc.method "Execute"
    rpc_service, _, rpc_method = method.lstrip("/").partition("/")
    attrs: dict[str, Any] = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": rpc_method}
    if service:
        attrs[ATTR_SERVICE] = service
    return attrs


def _set_grpc_status(span: Span, code: grpc.StatusCode | None, details: str | None = None) -> None:
    if code is None:
        return
    span.set_attribute(ATTR_GRPC_STATUS, code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))


# ---------------------------------------------------------------------------------------- server


class _ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str | None, exclude: Sequence[str]) -> None:
        self._service = service
        self._exclude = tuple(exclude)

    async def intercept_service(
        self, continuation: Callable[..., Any], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(self._exclude) or not hasattr(handler, "_replace"):
            return handler  # not traced: excluded, or a handler type other than grpc's own
        carrier = {
            key: value for key, value in (handler_call_details.invocation_metadata or ()) if isinstance(value, str)
        }
        parent = propagate.extract(carrier, context=Context())
        attrs = _rpc_attributes(method, self._service)
        name = method.lstrip("/")
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_wrap_unary(handler.unary_unary, name, parent, attrs))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=_wrap_unary(handler.stream_unary, name, parent, attrs))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, name, parent, attrs))
        if handler.stream_stream is not None:
            return handler._replace(stream_stream=_wrap_stream(handler.stream_stream, name, parent, attrs))
        return handler


def _start_server_span(name: str, parent: Context, attrs: dict[str, Any]) -> Span:
    return get_tracer(TRACER_NAME).start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attrs)


def _end_server_span(span: Span, context: grpc.aio.ServicerContext, exc: BaseException | None) -> None:
    if span.is_recording():
        code = _context_code(context)
        if exc is not None and not isinstance(exc, (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit)):
            # An unexpected exception: grpc answers UNKNOWN.
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            code = grpc.StatusCode.UNKNOWN
        elif isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            span.set_attribute("rpc.cancelled", True)
        _set_grpc_status(span, code or grpc.StatusCode.OK, _context_details(context))
    span.end()


def _context_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode | None:
    try:
        return context.code()
    except (NotImplementedError, AttributeError):
        return None


def _context_details(context: grpc.aio.ServicerContext) -> str | None:
    try:
        details = context.details()
    except (NotImplementedError, AttributeError):
        return None
    return details.decode(errors="replace") if isinstance(details, bytes) else details


def _wrap_unary(behavior: Callable[..., Any], name: str, parent: Context, attrs: dict[str, Any]) -> Callable[..., Any]:
    # Unary response (request unary or streaming): a coroutine returning the response.
    async def traced(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        span = _start_server_span(name, parent, attrs)
        exc: BaseException | None = None
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = behavior(request_or_iterator, context)
                if inspect.isawaitable(result):
                    result = await result
                return result
        except BaseException as error:
            exc = error
            raise
        finally:
            _end_server_span(span, context, exc)

    return traced


def _wrap_stream(behavior: Callable[..., Any], name: str, parent: Context, attrs: dict[str, Any]) -> Callable[..., Any]:
    # Streaming response: either an async generator or a coroutine writing with context.write().
    if inspect.isasyncgenfunction(behavior):

        async def traced_gen(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            span = _start_server_span(name, parent, attrs)
            exc: BaseException | None = None
            try:
                with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    async for response in behavior(request_or_iterator, context):
                        yield response
            except BaseException as error:
                exc = error
                raise
            finally:
                _end_server_span(span, context, exc)

        return traced_gen
    if inspect.isgeneratorfunction(behavior):
        return behavior  # a sync generator (thread-pool servers): left untraced rather than broken
    return _wrap_unary(behavior, name, parent, attrs)


def tracing_enabled() -> bool:
    """Whether spans are exported (configure_telemetry found an exporter)."""
    return not isinstance(tracer_provider(), IdOnlyTracerProvider)


def server_interceptors(
    service: str | None = None, *, exclude: Sequence[str] = DEFAULT_EXCLUDE, always: bool = False
) -> list[grpc.aio.ServerInterceptor]:
    """Interceptors for ``grpc.aio.server(interceptors=...)`` that continue the caller's trace.

    Empty when tracing is off (call :func:`configure_telemetry` before building servers): grpc.aio's
    interceptor machinery costs tens of microseconds per RPC even when it does nothing. The job
    path keeps its trace ids without them through :func:`trace_metadata` / :func:`rpc_parent`.

    Args:
        service: Recorded on each span as ``workmesh.service`` (e.g. "gateway"); useful when one
            process hosts several services and so shares one ``service.name`` resource.
        exclude: Method-name prefixes not traced (health checks and reflection by default).
        always: Install them even when tracing is off.
    """
    if not (always or tracing_enabled()):
        return []
    return [_ServerTracingInterceptor(service, exclude)]


def rpc_parent(context: grpc.aio.ServicerContext) -> Context | None:
    """Parent for a job span inside a handler: None (the current server span) when the server
    interceptor made one, else the caller's context read from the request metadata."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    carrier = {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
    return propagate.extract(carrier, context=Context())


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as gRPC metadata, for ``stub.Call(request, metadata=...)`` on the
    job path (gateway → Execute): carries the trace without interceptors (the client interceptor,
    when installed, replaces it with its own span's context)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


# ---------------------------------------------------------------------------------------- client


_pending: set[asyncio.Task[None]] = set()  # strong refs: the loop keeps only weak ones to tasks


class _ClientTracing:
    def __init__(self, service: str | None) -> None:
        self._service = service

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[Span, grpc.aio.ClientCallDetails]:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        span = get_tracer(TRACER_NAME).start_span(
            method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method, self._service)
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = grpc.aio.Metadata(*[(key, value) for key, value in (details.metadata or ()) if key not in carrier])
        for key, value in carrier.items():
            metadata.add(key, value)
        details = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return span, details

    @staticmethod
    def _failed(span: Span, exc: BaseException) -> None:
        if span.is_recording():
            if isinstance(exc, grpc.aio.AioRpcError):
                _set_grpc_status(span, exc.code(), exc.details())
            else:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    @staticmethod
    def _end_when_done(span: Span, call: Any) -> Any:
        if not span.is_recording():
            span.end()  # tracing off: nothing to record, no callback to pay for
            return call
        try:
            call.add_done_callback(lambda done: _schedule_finish(span, done))
        except (NotImplementedError, AttributeError):
            # An inner interceptor answered with a plain response: the call is complete and OK.
            _set_grpc_status(span, grpc.StatusCode.OK)
            span.end()
        return call

    async def _traced(self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        """One CLIENT span around the call, whatever its kind (the four interceptors share it)."""
        span, details = self._start(client_call_details)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        return self._end_when_done(span, call)


def _schedule_finish(span: Span, call: Any) -> None:
    # The status is only reachable through coroutines, even on a finished call.
    task = asyncio.get_running_loop().create_task(_finish(span, call))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _finish(span: Span, call: Any) -> None:
    try:
        if call.cancelled():
            span.set_attribute("rpc.cancelled", True)
            _set_grpc_status(span, grpc.StatusCode.CANCELLED)
        else:
            _set_grpc_status(span, await call.code(), await call.details())
    finally:
        span.end()


class _UnaryUnary(_ClientTracing, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: ANN001
        return await self._traced(continuation, client_call_details, request)


class _UnaryStream(_ClientTracing, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # noqa: ANN001
        return await self._traced(continuation, client_call_details, request)


class _StreamUnary(_ClientTracing, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # noqa: ANN001
        return await self._traced(continuation, client_call_details, request_iterator)


class _StreamStream(_ClientTracing, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # noqa: ANN001
        return await self._traced(continuation, client_call_details, request_iterator)


def client_interceptors(service: str | None = None, *, always: bool = False) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for ``grpc.aio.insecure_channel(addr, interceptors=...)``: one CLIENT span per
    call, its context sent as ``traceparent`` metadata (all four RPC shapes).

    Empty when tracing is off, like :func:`server_interceptors`.

    Args:
        service: Recorded on each span as ``workmesh.service`` (the calling service).
        always: Install them even when tracing is off.
    """
    if not (always or tracing_enabled()):
        return []
    return [_UnaryUnary(service), _UnaryStream(service), _StreamUnary(service), _StreamStream(service)]
