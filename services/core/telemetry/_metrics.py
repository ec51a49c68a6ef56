"""Metrics the gateway and the workers update, on the OpenTelemetry metrics API.

Without an exporter the meter provider is the API's no-op one: counters and histograms are empty
calls and gauge callbacks are never run. With one, gauge callbacks run on the exporter's thread at
each collection (every ``OTEL_METRIC_EXPORT_INTERVAL`` ms): they must be quick, must not await, and
should return a fresh dict (``dict(counts)`` of a plain dict is atomic under the GIL).

Instruments (attributes in brackets):

gateway
    ``workmesh.gateway.job.transitions`` counter [state, workflow_type]
    ``workmesh.gateway.jobs`` gauge, current jobs [state]
    ``workmesh.gateway.queue.depth`` gauge, queued jobs [workflow_type]
    ``workmesh.gateway.dispatch.latency`` histogram, ms from dispatchable to Execute accepted [workflow_type]
    ``workmesh.gateway.instance.in_flight`` gauge, jobs running per worker instance [instance]
worker
    ``workmesh.worker.jobs.running`` gauge [instance, workflow_type]
    ``workmesh.worker.capacity`` gauge [instance]
    ``workmesh.worker.jobs`` counter of finished jobs [instance, workflow_type, outcome]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from workmesh.services.core.limits import status_name as state_name

_log = logging.getLogger(__name__)

# Milliseconds: a local dispatch takes ~1 ms, a dispatch waiting for capacity can take minutes.
LATENCY_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class _MeterState:
    def __init__(self) -> None:
        self.provider: metrics.MeterProvider = metrics.NoOpMeterProvider()
        self.global_installed = False


_state = _MeterState()


def install_meter_provider(provider: metrics.MeterProvider) -> None:
    """Make `provider` the one :func:`get_meter` uses (configure_telemetry calls it)."""
    _state.provider = provider
    if not _state.global_installed and not isinstance(provider, metrics.NoOpMeterProvider):
        metrics.set_meter_provider(provider)
        _state.global_installed = True


def get_meter(name: str = "workmesh") -> Meter:
    """A meter from the configured provider (no-op until configure_telemetry sets an exporter)."""
    return _state.provider.get_meter(name)


def _observer(
    name: str,
    attr: str,
    source: Callable[[], Callable[[], Mapping[Any, float]] | None],
    key: Callable[[Any], str] = str,
    extra: Callable[[], Mapping[str, str]] = dict,
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    # Adapts a "() -> {key: value}" callback to the OTel gauge callback; a failing callback costs one
    # warning and an empty collection, never the exporter thread.
    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        callback = source()
        if callback is None:
            return []
        try:
            values = callback()
        except Exception:  # noqa: BLE001 - user callback; reported, not propagated
            _log.warning("metrics callback for %s failed", name, exc_info=True)
            return []
        base = extra()
        return [Observation(value, {**base, attr: key(k)}) for k, value in values.items()]

    return observe


class GatewayMetrics:
    """The gateway's instruments. Create once, after configure_telemetry, and keep it.

    Args:
        meter: Meter to create instruments on; default ``get_meter("workmesh.gateway")``.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or get_meter("workmesh.gateway")
        self._jobs: Callable[[], Mapping[Any, int]] | None = None
        self._queue: Callable[[], Mapping[str, int]] | None = None
        self._in_flight: Callable[[], Mapping[str, int]] | None = None
        self._shares: Callable[[], Mapping[str, float]] | None = None
        self._wait = meter.create_histogram(
            "workmesh.gateway.queue.wait",
            unit="s",
            description="Time a job waited in the queue before it got a slot, by tenant and workflow type",
        )
        meter.create_observable_gauge(
            "workmesh.gateway.tenant.share",
            unit="1",
            description="Fraction of the decayed worker-seconds of all tenants that each tenant received",
            callbacks=[_observer("tenant share", "tenant", lambda: self._shares)],
        )
        self._transitions = meter.create_counter(
            "workmesh.gateway.job.transitions", unit="{transition}", description="Job state transitions, by new state"
        )
        self._latency = meter.create_histogram(
            "workmesh.gateway.dispatch.latency",
            unit="ms",
            description="Time from a job becoming dispatchable to a worker accepting it",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_MS,
        )
        meter.create_observable_gauge(
            "workmesh.gateway.jobs",
            unit="{job}",
            description="Jobs in the store, by state",
            callbacks=[_observer("jobs", "state", lambda: self._jobs, key=state_name)],
        )
        meter.create_observable_gauge(
            "workmesh.gateway.queue.depth",
            unit="{job}",
            description="Queued jobs, by workflow type",
            callbacks=[_observer("queue depth", "workflow_type", lambda: self._queue)],
        )
        meter.create_observable_gauge(
            "workmesh.gateway.instance.in_flight",
            unit="{job}",
            description="Jobs dispatched and not finished, by worker instance",
            callbacks=[_observer("in-flight", "instance", lambda: self._in_flight)],
        )

    def job_transition(self, state: int | str, workflow_type: str) -> None:
        """Count one job entering `state` (a JobStatus value or name)."""
        self._transitions.add(1, {"state": state_name(state), "workflow_type": workflow_type})

    def dispatch_latency(self, milliseconds: float, workflow_type: str) -> None:
        """Record one dispatch's latency in milliseconds."""
        self._latency.record(milliseconds, {"workflow_type": workflow_type})

    def queue_wait(self, seconds: float, tenant: str, workflow_type: str) -> None:
        """Record how long one job waited queued before it got a slot."""
        self._wait.record(seconds, {"tenant": tenant, "workflow_type": workflow_type})

    def observe_tenant_shares(self, callback: Callable[[], Mapping[str, float]]) -> None:
        """Register `callback() -> {tenant: fraction of decayed usage}` for the tenant-share gauge."""
        self._shares = callback

    def observe_jobs(self, callback: Callable[[], Mapping[int | str, int]]) -> None:
        """Register `callback() -> {state: count}` (JobStatus values or names) for the jobs gauge."""
        self._jobs = callback

    def observe_queue_depth(self, callback: Callable[[], Mapping[str, int]]) -> None:
        """Register `callback() -> {workflow_type: queued count}` for the queue-depth gauge."""
        self._queue = callback

    def observe_in_flight(self, callback: Callable[[], Mapping[str, int]]) -> None:
        """Register `callback() -> {instance id: jobs in flight}` for the in-flight gauge."""
        self._in_flight = callback


class WorkerMetrics:
    """A worker instance's instruments. Create once, after configure_telemetry.

    Args:
        instance: This worker's instance id (attribute ``instance`` on every measurement).
        meter: Meter to create instruments on; default ``get_meter("workmesh.worker")``.
    """

    def __init__(self, instance: str, meter: Meter | None = None) -> None:
        meter = meter or get_meter("workmesh.worker")
        self._instance = {"instance": instance}
        self._running: Callable[[], Mapping[str, int]] | None = None
        self._capacity: Callable[[], int] | None = None
        self._finished = meter.create_counter(
            "workmesh.worker.jobs", unit="{job}", description="Finished jobs, by outcome"
        )
        meter.create_observable_gauge(
            "workmesh.worker.jobs.running",
            unit="{job}",
            description="Jobs running, by workflow type",
            callbacks=[_observer("running", "workflow_type", lambda: self._running, extra=lambda: self._instance)],
        )
        meter.create_observable_gauge(
            "workmesh.worker.capacity",
            unit="{job}",
            description="Jobs this instance runs at once",
            callbacks=[self._observe_capacity],
        )

    def observe(self, running: Callable[[], Mapping[str, int]], capacity: Callable[[], int]) -> None:
        """Register `running() -> {workflow_type: running count}` and `capacity() -> int`."""
        self._running = running
        self._capacity = capacity

    def job_finished(self, workflow_type: str, outcome: str) -> None:
        """Count one finished job; outcome e.g. "succeeded", "failed", "cancelled"."""
        self._finished.add(1, {**self._instance, "workflow_type": workflow_type, "outcome": outcome})

    def _observe_capacity(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._capacity is None:
            return []
        try:
            return [Observation(int(self._capacity()), self._instance)]
        except Exception:  # noqa: BLE001 - user callback; reported, not propagated
            _log.warning("metrics callback for capacity failed", exc_info=True)
            return []
