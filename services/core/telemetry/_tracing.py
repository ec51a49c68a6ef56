"""Tracing: the process's tracer provider, job spans, and trace context carried across the queue.

Export is chosen from the standard ``OTEL_*`` variables (see :mod:`workmesh.services.core.telemetry._setup`).
When nothing is exported, spans still get real trace and span ids but record nothing (like the SDK
with an ALWAYS_OFF sampler, cheaper): they cost a few microseconds, yet trace ids flow
across gateway, worker and results, so log lines stay correlated and ``workmesh job`` can print the
trace id even with tracing off.

The provider in force lives in this module; the OpenTelemetry global (settable once per process) is a
small delegate to it, so tests and a process hosting several services can reconfigure.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from structlog.contextvars import bind_contextvars, reset_contextvars

# Span attribute keys (also used by the gateway/worker for their own spans).
ATTR_JOB_ID = "workmesh.job_id"
ATTR_WORKFLOW_TYPE = "workmesh.workflow_type"
ATTR_ATTEMPT = "workmesh.attempt"
ATTR_INSTANCE = "workmesh.instance"
ATTR_SERVICE = "workmesh.service"

DEFAULT_TRACER = "workmesh"

Carrier = Mapping[str, str]


class _IdOnlyTracer(trace.Tracer):
    """What runs when nothing is exported: real ids, continued from the parent, nothing recorded.

    Like the SDK with an ALWAYS_OFF sampler at about half the cost (no sampler call, no attribute
    copies), which matters on the dispatch path. Unlike it, the parent's sampled flag is passed on,
    so a process that exports nothing does not cut the trace of processes around it that do.
    """

    def start_span(
        self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL, *args: Any, **kwargs: Any
    ) -> Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            return trace.NonRecordingSpan(
                trace.SpanContext(
                    parent.trace_id,
                    _random_id(64),
                    is_remote=False,
                    trace_flags=parent.trace_flags,
                    trace_state=parent.trace_state,
                )
            )
        return trace.NonRecordingSpan(trace.SpanContext(_random_id(128), _random_id(64), is_remote=False))

    def start_as_current_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> Any:
        return trace.use_span(self.start_span(name, context), end_on_exit=True)


def _random_id(bits: int) -> int:
    while True:  # zero is the invalid id
        value = random.getrandbits(bits)
        if value:
            return value


class IdOnlyTracerProvider(trace.TracerProvider):
    """Tracer provider used when no exporter is configured (see :class:`_IdOnlyTracer`)."""

    _tracer = _IdOnlyTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self._tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class _DelegatingTracerProvider(trace.TracerProvider):
    """Installed as the OpenTelemetry global: hands out tracers of the provider in force."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _state.provider.get_tracer(*args, **kwargs)


class _TracingState:
    """The provider in force plus a tracer cache (the SDK builds a new Tracer on every get_tracer)."""

    def __init__(self) -> None:
        self.provider: trace.TracerProvider = IdOnlyTracerProvider()
        self.tracers: dict[str, trace.Tracer] = {}
        self.global_installed = False

    def install(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self.tracers = {}
        if not self.global_installed:
            # Third-party instrumentation reads the global; it can be set once per process.
            trace.set_tracer_provider(_DelegatingTracerProvider())
            self.global_installed = True


_state = _TracingState()


def install_tracer_provider(provider: trace.TracerProvider) -> None:
    """Make `provider` the one used by job spans and the gRPC interceptors (configure_telemetry calls it)."""
    _state.install(provider)


def tracer_provider() -> trace.TracerProvider:
    """The tracer provider in force (a non-sampling one until configure_telemetry runs)."""
    return _state.provider


def get_tracer(name: str = DEFAULT_TRACER) -> trace.Tracer:
    """A tracer from the configured provider, cached by instrumentation name."""
    tracer = _state.tracers.get(name)
    if tracer is None:
        tracer = _state.tracers[name] = _state.provider.get_tracer(name)
    return tracer


def job_attributes(
    job_id: str | None = None, workflow_type: str | None = None, attempt: int | None = None, instance: str | None = None
) -> dict[str, Any]:
    """Span attributes for a job; None values are left out."""
    attrs: dict[str, Any] = {}
    if job_id is not None:
        attrs[ATTR_JOB_ID] = job_id
    if workflow_type is not None:
        attrs[ATTR_WORKFLOW_TYPE] = workflow_type
    if attempt is not None:
        attrs[ATTR_ATTEMPT] = attempt
    if instance is not None:
        attrs[ATTR_INSTANCE] = instance
    return attrs


class job_span:  # noqa: N801 - used like a function: `with job_span(...) as span:`
    """Start a span about one job and make it current; bind the job to log lines meanwhile.

    A context manager (a class rather than a generator: it is on the dispatch path, and this
    halves its cost). An exception leaving the block is recorded and marks the span failed.

    Args:
        name: Span name, e.g. ``"job.dispatch"`` or ``"job.execute"``.
        job_id: The job's id (attribute ``workmesh.job_id``; also bound to log lines).
        workflow_type: The workflow type (``workmesh.workflow_type``).
        attempt: 1-based attempt number (``workmesh.attempt``); each attempt gets its own span.
        instance: Worker instance id (``workmesh.instance``).
        parent: Where the span hangs: a carrier from :func:`inject_context` or a traceparent
            string from :func:`current_traceparent`, stored with the job (the span then joins the
            job's trace even in another task or process; an empty one starts a new trace), an
            OpenTelemetry Context, or None for the current span.
        kind: Span kind.
        attributes: Further span attributes.
        bind_logs: Bind job_id/workflow_type/attempt/instance to structlog context while open.
        start_time: When the span began, if before entering the block (ns since the epoch or an
            aware datetime): e.g. a ``"job.queued"`` span from the job's creation to its dispatch.

    Yields:
        The span (non-recording when tracing is off; setting attributes on it is then free).
    """

    __slots__ = ("_name", "_ctx", "_attrs", "_kind", "_start", "_log_fields", "_span", "_token", "_log_tokens")

    def __init__(
        self,
        name: str,
        *,
        job_id: str,
        workflow_type: str | None = None,
        attempt: int | None = None,
        instance: str | None = None,
        parent: Carrier | str | Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        bind_logs: bool = True,
        start_time: int | dt.datetime | None = None,
    ) -> None:
        self._name = name
        self._start = int(start_time.timestamp() * 1e9) if isinstance(start_time, dt.datetime) else start_time
        self._ctx = extract_context(parent) if parent is not None and not isinstance(parent, Context) else parent
        self._attrs = job_attributes(job_id, workflow_type, attempt, instance)
        if attributes:
            self._attrs.update(attributes)
        self._kind = kind
        self._log_fields: dict[str, Any] | None = None
        if bind_logs:
            self._log_fields = {"job_id": job_id}
            if workflow_type is not None:
                self._log_fields["workflow_type"] = workflow_type
            if attempt is not None:
                self._log_fields["attempt"] = attempt
            if instance is not None:
                self._log_fields["instance"] = instance

    def __enter__(self) -> Span:
        self._span = span = get_tracer().start_span(
            self._name, context=self._ctx, kind=self._kind, attributes=self._attrs, start_time=self._start
        )
        self._token = otel_context.attach(trace.set_span_in_context(span, self._ctx))
        self._log_tokens = bind_contextvars(**self._log_fields) if self._log_fields else None
        return span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        try:
            if self._log_tokens is not None:
                reset_contextvars(**self._log_tokens)
            otel_context.detach(self._token)
        finally:
            end_span(self._span, exc)


def start_job_span(
    name: str,
    *,
    job_id: str,
    workflow_type: str | None = None,
    attempt: int | None = None,
    instance: str | None = None,
    parent: Carrier | str | Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    start_time: int | dt.datetime | None = None,
) -> Span:
    """Start a job span that outlives a block (e.g. a dispatch attempt ended by another task).

    Same arguments as :func:`job_span`. The span is not made current: wrap the code that should run
    under it in ``with use_span(span):`` (tasks created there inherit it), and call
    :func:`end_span` exactly once when the work is over.
    """
    ctx = extract_context(parent) if parent is not None and not isinstance(parent, Context) else parent
    attrs = job_attributes(job_id, workflow_type, attempt, instance)
    if attributes:
        attrs.update(attributes)
    start = int(start_time.timestamp() * 1e9) if isinstance(start_time, dt.datetime) else start_time
    return get_tracer().start_span(name, context=ctx, kind=kind, attributes=attrs, start_time=start)


def use_span(span: Span) -> Any:
    """Context manager making `span` current without ending it on exit."""
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


def end_span(span: Span, error: BaseException | str | None = None) -> None:
    """End `span`; with `error` (an exception or a reason), mark it failed first."""
    if error is not None and span.is_recording():
        if isinstance(error, BaseException):
            span.record_exception(error)
            error = f"{type(error).__name__}: {error}"
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def inject_context(context: Context | None = None) -> dict[str, str]:
    """The current (or given) trace context as W3C headers, e.g. ``{"traceparent": "00-…"}``.

    Store the result with a job at submit time; pass it as ``parent=`` to :func:`job_span` when the
    job is dispatched, so every attempt joins the submit's trace.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Carrier | str | None) -> Context:
    """An OpenTelemetry Context holding the span context in `carrier` (empty when there is none).

    Args:
        carrier: Headers from :func:`inject_context`, or just a ``traceparent`` value (what
            :func:`current_traceparent` returns), or None.

    The result never inherits the caller's current span: a job's spans belong to the job's trace.
    """
    if isinstance(carrier, str):
        carrier = {"traceparent": carrier} if carrier else None
    return propagate.extract(dict(carrier or {}), context=Context())


def current_traceparent() -> str:
    """The current span as a W3C ``traceparent`` value ("" outside any span): one string column
    is enough to store a job's trace context; :func:`job_span` takes it as ``parent=``."""
    return inject_context().get("traceparent", "")


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or "" outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else ""


def current_span_id() -> str:
    """The current span's id as 16 hex digits, or "" outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_span_id(ctx.span_id) if ctx.is_valid else ""


def trace_id_from_carrier(carrier: Carrier | str | None) -> str:
    """The trace id (hex) in a carrier or traceparent string, or "" if it holds none."""
    ctx = trace.get_current_span(extract_context(carrier)).get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else ""


def reset_tracing_for_tests() -> None:
    """Back to the non-sampling provider (the global stays as first installed)."""
    _state.provider = IdOnlyTracerProvider()
    _state.tracers = {}
