"""Gateway and worker instruments, read back with an in-memory metric reader."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from workmesh.services.core.telemetry import GatewayMetrics, WorkerMetrics, get_meter, state_name
from workmesh.v1 import common_pb2


def collect(reader: InMemoryMetricReader) -> dict[str, list]:
    """Metric name -> data points of one collection."""
    found: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def points(found: dict[str, list], name: str, key: str) -> dict[str, float]:
    return {p.attributes[key]: p.value for p in found[name]}


def test_gateway_instruments(captured):
    gateway = GatewayMetrics()
    gateway.job_transition(common_pb2.JOB_STATUS_QUEUED, "heat-demand")
    gateway.job_transition(common_pb2.JOB_STATUS_QUEUED, "heat-demand")
    gateway.job_transition("JOB_STATUS_RUNNING", "heat-demand")
    gateway.dispatch_latency(3.5, "heat-demand")
    gateway.dispatch_latency(120.0, "heat-demand")
    queue = {"heat-demand": 4, "kpi": 0}
    gateway.observe_queue_depth(lambda: dict(queue))
    gateway.observe_jobs(lambda: {common_pb2.JOB_STATUS_QUEUED: 4, common_pb2.JOB_STATUS_RUNNING: 1})
    gateway.observe_in_flight(lambda: {"w-1": 1, "w-2": 0})

    found = collect(captured.metrics)
    transitions = {
        (p.attributes["state"], p.attributes["workflow_type"]): p.value
        for p in found["workmesh.gateway.job.transitions"]
    }
    assert transitions == {("QUEUED", "heat-demand"): 2, ("RUNNING", "heat-demand"): 1}
    (latency,) = found["workmesh.gateway.dispatch.latency"]
    assert (latency.count, latency.sum, latency.min, latency.max) == (2, 123.5, 3.5, 120.0)
    assert latency.attributes == {"workflow_type": "heat-demand"}
    assert 1.0 in latency.explicit_bounds and 60000.0 in latency.explicit_bounds
    assert points(found, "workmesh.gateway.queue.depth", "workflow_type") == {"heat-demand": 4, "kpi": 0}
    assert points(found, "workmesh.gateway.jobs", "state") == {"QUEUED": 4, "RUNNING": 1}
    assert points(found, "workmesh.gateway.instance.in_flight", "instance") == {"w-1": 1, "w-2": 0}

    # Gauges report what the callback says at each collection.
    queue["heat-demand"] = 1
    assert points(collect(captured.metrics), "workmesh.gateway.queue.depth", "workflow_type")["heat-demand"] == 1


def test_fair_share_instruments(captured):
    gateway = GatewayMetrics()
    gateway.queue_wait(2.5, "acme", "heat-demand")
    gateway.queue_wait(0.5, "acme", "heat-demand")
    gateway.observe_tenant_shares(lambda: {"acme": 0.75, "other": 0.25})
    found = collect(captured.metrics)
    (wait,) = found["workmesh.gateway.queue.wait"]
    assert (wait.count, wait.sum) == (2, 3.0)
    assert wait.attributes == {"tenant": "acme", "workflow_type": "heat-demand"}
    assert points(found, "workmesh.gateway.tenant.share", "tenant") == {"acme": 0.75, "other": 0.25}


def test_worker_instruments(captured):
    worker = WorkerMetrics(instance="w-1")
    running = {"heat-demand": 2}
    worker.observe(running=lambda: dict(running), capacity=lambda: 4)
    worker.job_finished("heat-demand", "succeeded")
    found = collect(captured.metrics)
    (capacity,) = found["workmesh.worker.capacity"]
    assert (capacity.value, dict(capacity.attributes)) == (4, {"instance": "w-1"})
    (run,) = found["workmesh.worker.jobs.running"]
    assert (run.value, dict(run.attributes)) == (2, {"instance": "w-1", "workflow_type": "heat-demand"})
    (done,) = found["workmesh.worker.jobs"]
    assert done.value == 1 and done.attributes["outcome"] == "succeeded"


def test_failing_callback_does_not_break_collection(captured):
    gateway = GatewayMetrics()

    def broken():
        raise RuntimeError("store unreachable")

    gateway.observe_jobs(broken)
    gateway.observe_queue_depth(lambda: {"kpi": 2})
    found = collect(captured.metrics)
    assert points(found, "workmesh.gateway.queue.depth", "workflow_type") == {"kpi": 2}
    assert not found.get("workmesh.gateway.jobs")


def test_without_exporter_instruments_are_no_ops():
    # No configure_telemetry in this test: the API's no-op meter; calls cost nothing and fail never.
    gateway = GatewayMetrics()
    gateway.job_transition(common_pb2.JOB_STATUS_FAILED, "x")
    gateway.dispatch_latency(1.0, "x")
    gateway.observe_queue_depth(lambda: 1 / 0)  # never called: nothing collects
    assert type(get_meter()).__name__.startswith("NoOp")


def test_state_name():
    assert state_name(common_pb2.JOB_STATUS_TIMED_OUT) == "TIMED_OUT"
    assert state_name("JOB_STATUS_CANCELLED") == "CANCELLED"
    assert state_name("SUCCEEDED") == "SUCCEEDED"
