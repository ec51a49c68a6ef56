"""OTLP export of traces and metrics to a real gRPC collector started in the test (as Jaeger's :4317)."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry import metrics

from tests.support import eventually
from workmesh.services.core.telemetry import GatewayMetrics, _tracing, configure_telemetry, job_span
from workmesh.services.core.telemetry._metrics import install_meter_provider

_OTLP = "needs opentelemetry-exporter-otlp-proto-grpc (the OTLP exporter services use in production)"
pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", reason=_OTLP)
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402


class Collector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    """Receives OTLP/gRPC exports like Jaeger's or the OTel collector's port 4317."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[dict, object]] = []  # (resource attributes, span)
        self.metric_names: set[str] = set()

    def Export(self, request, context):  # noqa: N802, ANN001
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                for rs in request.resource_spans:
                    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                    self.spans += [(resource, s) for ss in rs.scope_spans for s in ss.spans]
                return trace_service_pb2.ExportTraceServiceResponse()
            for rm in request.resource_metrics:
                self.metric_names |= {m.name for sm in rm.scope_metrics for m in sm.metrics}
            return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def collector():
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(None)


def test_otlp_export_reaches_a_collector(collector, monkeypatch):
    servicer, port = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WORKMESH_INSTANCE_ID", "gw-1")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    telemetry = configure_telemetry("workmesh-gateway", console_logs=False)
    try:
        assert telemetry.config.traces_exporter == "otlp"
        GatewayMetrics().job_transition("QUEUED", "heat-demand")
        with job_span("job.submit", job_id="j-otlp", workflow_type="heat-demand") as span:
            assert span.is_recording()
        telemetry.force_flush()

        def exported():
            with servicer.lock:
                assert servicer.spans and "workmesh.gateway.job.transitions" in servicer.metric_names
                return list(servicer.spans)

        ((resource, exported_span),) = eventually(exported)
        assert resource["service.name"] == "workmesh-gateway"
        assert resource["service.instance.id"] == "gw-1"
        assert exported_span.name == "job.submit"
        attributes = {a.key: a.value.string_value for a in exported_span.attributes}
        assert attributes["workmesh.job_id"] == "j-otlp"
    finally:
        telemetry.shutdown()
        _tracing.reset_tracing_for_tests()
        install_meter_provider(metrics.NoOpMeterProvider())
