"""Fixtures for the telemetry tests: an in-memory span exporter and metric reader per test."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pytest
import structlog
from opentelemetry import metrics
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workmesh.services.core.telemetry import (
    Telemetry,
    TelemetryConfig,
    _tracing,
    configure_logging,
    configure_telemetry,
)
from workmesh.services.core.telemetry._metrics import install_meter_provider


@pytest.fixture(autouse=True)
def _leave_logging_as_found():
    """Telemetry tests configure logging; other test areas must not inherit that."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_workmesh", False)]:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


@dataclass
class Captured:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: io.StringIO


@pytest.fixture
def captured() -> Captured:
    """Telemetry configured for one test: spans, metrics and JSON log lines kept in memory."""
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    config = TelemetryConfig(service_name="workmesh-test", instance_id="test-1")
    telemetry = configure_telemetry("workmesh-test", config=config, span_exporter=spans, metric_readers=[reader])
    logs = io.StringIO()
    configure_logging("DEBUG", json=True, stream=logs)
    try:
        yield Captured(telemetry, spans, reader, logs)
    finally:
        telemetry.shutdown()
        _tracing.reset_tracing_for_tests()
        install_meter_provider(metrics.NoOpMeterProvider())
