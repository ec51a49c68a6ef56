"""Pins the public names of workmesh.services.core.telemetry: changing them is an API change."""

from workmesh.services.core import telemetry

EXPECTED = {
    # setup
    "configure_telemetry",
    "Telemetry",
    "TelemetryConfig",
    # traces
    "job_span",
    "start_job_span",
    "use_span",
    "end_span",
    "inject_context",
    "extract_context",
    "current_trace_id",
    "current_span_id",
    "current_traceparent",
    "trace_id_from_carrier",
    "get_tracer",
    "server_interceptors",
    "client_interceptors",
    "trace_metadata",
    "rpc_parent",
    "tracing_enabled",
    "ATTR_JOB_ID",
    "ATTR_WORKFLOW_TYPE",
    "ATTR_ATTEMPT",
    "ATTR_INSTANCE",
    "ATTR_SERVICE",
    # logs
    "configure_logging",
    "get_logger",
    "bind_job",
    "JobBinding",
    "add_trace_context",
    # metrics
    "GatewayMetrics",
    "WorkerMetrics",
    "get_meter",
    "state_name",
}


def test_exported_names_are_pinned():
    assert set(telemetry.__all__) == EXPECTED
    assert len(telemetry.__all__) == len(EXPECTED)  # no duplicates


def test_every_exported_name_exists_and_is_documented():
    for name in telemetry.__all__:
        obj = getattr(telemetry, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
