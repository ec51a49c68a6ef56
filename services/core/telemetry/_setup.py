"""Process-level telemetry setup: read the OTEL_*/WORKMESH_LOG_* environment once, build providers.

Exporter choice follows the OpenTelemetry conventions, with "off" as our default:

- ``OTEL_SDK_DISABLED=true`` → nothing is exported;
- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` = ``otlp`` | ``console`` | ``none``;
- unset → ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal ``…_TRACES_ENDPOINT`` /
  ``…_METRICS_ENDPOINT``) is set, else ``none``.

The OTLP exporters (package ``opentelemetry-exporter-otlp-proto-grpc``) read endpoint, headers,
timeout and TLS settings from the same variables themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter

from workmesh.services.core.telemetry._logging import configure_logging
from workmesh.services.core.telemetry._metrics import install_meter_provider
from workmesh.services.core.telemetry._tracing import IdOnlyTracerProvider, install_tracer_provider

_log = logging.getLogger(__name__)
EXPORTERS = ("otlp", "console", "none")
OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-grpc"


def _exporter_choice(env: Mapping[str, str], signal: str) -> str:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    var = f"OTEL_{signal.upper()}_EXPORTER"
    # The spec allows a comma list; one exporter per signal is all we support.
    choice = env.get(var, "").split(",")[0].strip().lower()
    if not choice:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        return "otlp" if endpoint else "none"
    if choice not in EXPORTERS:
        raise ValueError(f"{var}: must be one of {', '.join(EXPORTERS)}, got {choice!r}")
    return choice


@dataclass(frozen=True)
class TelemetryConfig:
    """What to export and how to log, read from the environment once at process start.

    Attributes:
        service_name: ``service.name`` resource attribute (``OTEL_SERVICE_NAME`` overrides the
            name the code passes: operators name services in deployments).
        instance_id: ``service.instance.id``: ``WORKMESH_INSTANCE_ID`` or ``<hostname>-<random>``.
        traces_exporter: "otlp", "console" or "none".
        metrics_exporter: "otlp", "console" or "none".
        log_level: From ``WORKMESH_LOG_LEVEL`` (default INFO).
        log_format: "json", "console" or "" (auto: JSON unless stderr is a terminal).
    """

    service_name: str
    instance_id: str
    traces_exporter: str = "none"
    metrics_exporter: str = "none"
    log_level: str = "INFO"
    log_format: str = ""

    @classmethod
    def from_env(
        cls, service_name: str, env: Mapping[str, str] | None = None, *, instance_id: str | None = None
    ) -> TelemetryConfig:
        """Read the configuration; raises ValueError naming the variable on a bad value."""
        env = os.environ if env is None else env
        log_format = env.get("WORKMESH_LOG_FORMAT", "").strip().lower()
        if log_format not in ("", "json", "console"):
            raise ValueError(f"WORKMESH_LOG_FORMAT: must be 'json' or 'console', got {log_format!r}")
        return cls(
            service_name=env.get("OTEL_SERVICE_NAME", "").strip() or service_name,
            instance_id=(
                instance_id
                or env.get("WORKMESH_INSTANCE_ID", "").strip()
                or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
            ),
            traces_exporter=_exporter_choice(env, "traces"),
            metrics_exporter=_exporter_choice(env, "metrics"),
            log_level=(env.get("WORKMESH_LOG_LEVEL", "").strip() or "INFO").upper(),
            log_format=log_format,
        )


@dataclass(frozen=True)
class Telemetry:
    """The providers of this process. Call :meth:`shutdown` on exit to flush what is buffered."""

    config: TelemetryConfig
    tracer_provider: trace.TracerProvider  # the SDK's when exporting, else IdOnlyTracerProvider
    meter_provider: metrics.MeterProvider

    def force_flush(self, timeout_millis: int = 5000) -> None:
        """Export buffered spans and metrics now."""
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.force_flush(timeout_millis)
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the exporters (idempotent)."""
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()


def _otlp_span_exporter() -> SpanExporter | None:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError:
        _log.error("traces not exported: OTLP requested but %s is not installed", OTLP_PACKAGE)
        return None
    return OTLPSpanExporter()


def _metric_reader(choice: str) -> MetricReader | None:
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout))
    if choice == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        except ImportError:
            _log.error("metrics not exported: OTLP requested but %s is not installed", OTLP_PACKAGE)
            return None
        return PeriodicExportingMetricReader(OTLPMetricExporter())
    return None


def build_providers(
    config: TelemetryConfig, *, span_exporter: SpanExporter | None = None, metric_readers: Sequence[MetricReader] = ()
) -> tuple[trace.TracerProvider, metrics.MeterProvider]:
    """Tracer and meter providers for `config` (extra exporter/readers: tests, embedding)."""
    resource = Resource.create({"service.name": config.service_name, "service.instance.id": config.instance_id})
    processors: list[SpanProcessor] = []
    if span_exporter is not None:
        processors.append(SimpleSpanProcessor(span_exporter))
    if config.traces_exporter == "console":
        # sys.stdout as of now (the exporter's default is the one at import time).
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    elif config.traces_exporter == "otlp" and (otlp := _otlp_span_exporter()) is not None:
        processors.append(BatchSpanProcessor(otlp))
    tracer_provider: trace.TracerProvider
    if processors:
        # The SDK's sampler from OTEL_TRACES_SAMPLER (default parentbased_always_on).
        tracer_provider = TracerProvider(resource=resource)
        for processor in processors:
            tracer_provider.add_span_processor(processor)
    else:
        # Nothing exported: ids and propagation only, nothing recorded (see _tracing).
        tracer_provider = IdOnlyTracerProvider()

    readers = list(metric_readers)
    if (reader := _metric_reader(config.metrics_exporter)) is not None:
        readers.append(reader)
    meter_provider: metrics.MeterProvider = (
        MeterProvider(resource=resource, metric_readers=readers) if readers else metrics.NoOpMeterProvider()
    )
    return tracer_provider, meter_provider


def configure_telemetry(
    service_name: str,
    *,
    console_logs: bool | None = None,
    instance_id: str | None = None,
    config: TelemetryConfig | None = None,
    span_exporter: SpanExporter | None = None,
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """Set up logs, traces and metrics for this process; call once at start, before serving.

    Args:
        service_name: E.g. "workmesh-gateway", "workmesh-worker", "workmesh-results".
        console_logs: True for readable console lines (``workmesh dev``), False for JSON lines,
            None to decide from WORKMESH_LOG_FORMAT / whether stderr is a terminal.
        instance_id: ``service.instance.id`` (a worker passes its instance id).
        config: A ready configuration instead of reading the environment.
        span_exporter: An extra exporter fed synchronously (tests: InMemorySpanExporter).
        metric_readers: Extra metric readers (tests: InMemoryMetricReader).

    Returns:
        The process's :class:`Telemetry`; a later call replaces it (the previous one is shut down
        by its owner, not here).

    Raises:
        ValueError: A bad OTEL_*_EXPORTER, WORKMESH_LOG_LEVEL or WORKMESH_LOG_FORMAT value.
    """
    config = config or TelemetryConfig.from_env(service_name, instance_id=instance_id)
    json = None if console_logs is None else not console_logs
    if json is None and config.log_format:
        json = config.log_format == "json"
    configure_logging(config.log_level, json)
    tracer_provider, meter_provider = build_providers(
        config, span_exporter=span_exporter, metric_readers=metric_readers
    )
    install_tracer_provider(tracer_provider)
    install_meter_provider(meter_provider)
    _log.debug(
        "telemetry configured: service=%s traces=%s metrics=%s",
        config.service_name,
        config.traces_exporter,
        config.metrics_exporter,
    )
    return Telemetry(config, tracer_provider, meter_provider)
