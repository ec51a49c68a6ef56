"""Exporter choice and names from the OTEL_* / WORKMESH_* environment."""

from __future__ import annotations

import io
import json
import sys

import pytest
from opentelemetry import metrics

from workmesh.services.core.telemetry import TelemetryConfig, _tracing, configure_telemetry, job_span
from workmesh.services.core.telemetry._metrics import install_meter_provider
from workmesh.services.core.telemetry._tracing import IdOnlyTracerProvider


@pytest.mark.parametrize(
    ("env", "traces", "metrics_"),
    [
        ({}, "none", "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"}, "otlp", "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4317"}, "otlp", "none"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console", "none"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "none", "otlp"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "none", "none"),
        ({"OTEL_METRICS_EXPORTER": "Console"}, "none", "console"),
    ],
)
def test_exporter_choice(env, traces, metrics_):
    config = TelemetryConfig.from_env("workmesh-gateway", env, instance_id="i-1")
    assert (config.traces_exporter, config.metrics_exporter) == (traces, metrics_)


def test_names_and_levels_from_env():
    config = TelemetryConfig.from_env(
        "workmesh-worker",
        {"OTEL_SERVICE_NAME": "workmesh-worker-heat", "WORKMESH_INSTANCE_ID": "w-7", "WORKMESH_LOG_LEVEL": "debug"},
    )
    assert (config.service_name, config.instance_id, config.log_level) == ("workmesh-worker-heat", "w-7", "DEBUG")
    default = TelemetryConfig.from_env("workmesh-results", {})
    assert default.service_name == "workmesh-results" and default.instance_id and default.log_level == "INFO"


@pytest.mark.parametrize("env", [{"OTEL_TRACES_EXPORTER": "zipkin"}, {"WORKMESH_LOG_FORMAT": "xml"}])
def test_bad_values_name_the_variable(env):
    with pytest.raises(ValueError, match=next(iter(env))):
        TelemetryConfig.from_env("workmesh-gateway", env)


@pytest.fixture
def restore_providers():
    yield
    _tracing.reset_tracing_for_tests()
    install_meter_provider(metrics.NoOpMeterProvider())


def test_console_exporter_prints_spans(monkeypatch, capsys, restore_providers):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    telemetry = configure_telemetry("workmesh-dev", console_logs=True)
    with job_span("job.execute", job_id="j-console"):
        pass
    telemetry.shutdown()
    out = capsys.readouterr().out
    assert '"name": "job.execute"' in out and '"workmesh.job_id": "j-console"' in out


def test_missing_otlp_package_is_reported_and_not_fatal(monkeypatch, restore_providers):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    # As if the package were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.metric_exporter", None)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    telemetry = configure_telemetry("workmesh-gateway", console_logs=False)
    assert telemetry.config.traces_exporter == "otlp"
    assert isinstance(telemetry.tracer_provider, IdOnlyTracerProvider)  # ids only, nothing exported
    errors = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {e["level"] for e in errors} == {"error"}
    assert all("opentelemetry-exporter-otlp-proto-grpc" in e["event"] for e in errors) and len(errors) == 2
