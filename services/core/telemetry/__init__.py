"""Observability for every workmesh process: traces, structured logs and metrics.

Each service calls :func:`configure_telemetry` once at start, before building gRPC servers and
channels (exporters from the standard ``OTEL_*`` variables; nothing exported by default). Servers
and channels take :func:`server_interceptors` / :func:`client_interceptors` (empty lists when
nothing is exported: zero cost per RPC). A job is one trace across gateway, worker and results::

    # gateway, SubmitJob
    with job_span("job.submit", job_id=..., workflow_type=...):
        record.trace_parent = current_traceparent()     # stored with the job
    # gateway, each dispatch attempt
    span = start_job_span("job.attempt", job_id=..., workflow_type=..., attempt=n,
                          instance=..., parent=record.trace_parent)
    with use_span(span):
        call = stub.Execute(request, metadata=trace_metadata())
    ...
    end_span(span, error)                               # when the attempt is over

    # worker, Execute handler (and results handlers alike)
    with job_span("job.execute", job_id=..., workflow_type=..., attempt=...,
                  parent=rpc_parent(context)):
        log.info("started")                             # carries job_id, trace_id, span_id

Metrics: :class:`GatewayMetrics`, :class:`WorkerMetrics`. Implementation: ``_tracing`` (spans,
carriers), ``_grpc`` (interceptors, metadata), ``_logging``, ``_metrics``,
``_setup`` (environment).
"""

from workmesh.services.core.telemetry._grpc import (
    client_interceptors,
    rpc_parent,
    server_interceptors,
    trace_metadata,
    tracing_enabled,
)
from workmesh.services.core.telemetry._logging import (
    JobBinding,
    add_trace_context,
    bind_job,
    configure_logging,
    get_logger,
)
from workmesh.services.core.telemetry._metrics import GatewayMetrics, WorkerMetrics, get_meter, state_name
from workmesh.services.core.telemetry._setup import Telemetry, TelemetryConfig, configure_telemetry
from workmesh.services.core.telemetry._tracing import (
    ATTR_ATTEMPT,
    ATTR_INSTANCE,
    ATTR_JOB_ID,
    ATTR_SERVICE,
    ATTR_WORKFLOW_TYPE,
    current_span_id,
    current_trace_id,
    current_traceparent,
    end_span,
    extract_context,
    get_tracer,
    inject_context,
    job_span,
    start_job_span,
    trace_id_from_carrier,
    use_span,
)

__all__ = [
    "ATTR_ATTEMPT",
    "ATTR_INSTANCE",
    "ATTR_JOB_ID",
    "ATTR_SERVICE",
    "ATTR_WORKFLOW_TYPE",
    "GatewayMetrics",
    "JobBinding",
    "Telemetry",
    "TelemetryConfig",
    "WorkerMetrics",
    "add_trace_context",
    "bind_job",
    "client_interceptors",
    "configure_logging",
    "configure_telemetry",
    "current_span_id",
    "current_traceparent",
    "end_span",
    "current_trace_id",
    "extract_context",
    "get_logger",
    "get_meter",
    "get_tracer",
    "inject_context",
    "job_span",
    "rpc_parent",
    "server_interceptors",
    "start_job_span",
    "state_name",
    "trace_id_from_carrier",
    "trace_metadata",
    "tracing_enabled",
    "use_span",
]
