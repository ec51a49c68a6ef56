"""Durable-gateway settings and wiring, in process: env configuration of the job store, leases
and retention; the retention sweep; the job's trace (submit → attempt → worker request) and the
gateway metrics."""

from __future__ import annotations

import logging

import pytest
import structlog
from opentelemetry import metrics
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.gateway.mesh import Mesh, terminal
from tests.support import eventually_async, run
from workmesh.registry import EmbeddedRegistry
from workmesh.services.core import env as envvars
from workmesh.services.core.telemetry import (
    ATTR_ATTEMPT,
    ATTR_INSTANCE,
    ATTR_JOB_ID,
    TelemetryConfig,
    _tracing,
    configure_telemetry,
    trace_id_from_carrier,
)
from workmesh.services.core.telemetry._metrics import install_meter_provider
from workmesh.services.gateway import GatewayConfig, create_server
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo


def test_durable_defaults_and_env():
    default = GatewayConfig.from_env({})
    assert (default.database_url, default.data_dir, default.job_ttl) == ("", ".workmesh", None)
    assert (default.lease_seconds, default.lease_renew, default.sqlite_sync) == (10.0, 3.0, "NORMAL")
    assert GatewayConfig.from_env({"WORKMESH_SQLITE_SYNC": "full"}).sqlite_sync == "FULL"
    config = GatewayConfig.from_env(
        {
            "WORKMESH_DATA_DIR": "/var/lib/workmesh",
            "WORKMESH_REPLICA_ID": "gw-a",
            "WORKMESH_LEASE_SECONDS": "2",
            "WORKMESH_JOB_TTL": "30d",
        }
    )
    assert (config.data_dir, config.replica_id, config.job_ttl) == ("/var/lib/workmesh", "gw-a", 30 * 86400.0)
    assert config.lease_seconds == 2 and 0 < config.lease_renew < 2  # renew follows a short lease
    assert [envvars.seconds({"X": v}, "X", None, off=True) for v in ("12h", "90m", "45s", "7", "off", "")] == [
        43200.0,
        5400.0,
        45.0,
        7.0,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("env", "word"),
    [
        ({"WORKMESH_JOB_TTL": "soon"}, "WORKMESH_JOB_TTL"),
        ({"WORKMESH_LEASE_SECONDS": "2", "WORKMESH_LEASE_RENEW": "5"}, "WORKMESH_LEASE_RENEW"),
        ({"WORKMESH_LEASE_SECONDS": "abc"}, "WORKMESH_LEASE_SECONDS"),
        ({"WORKMESH_SQLITE_SYNC": "OFF"}, "WORKMESH_SQLITE_SYNC"),  # no sync at all: not offered
    ],
)
def test_bad_durability_env_names_the_variable(env, word):
    with pytest.raises(ValueError, match=word):
        GatewayConfig.from_env(env)


def test_retention_sweep_deletes_finished_jobs_after_the_ttl(tmp_path):
    async def main():
        async with EmbeddedRegistry() as registry:
            config = GatewayConfig(address="127.0.0.1:0", registry=registry.config, data_dir=str(tmp_path), job_ttl=0.5)
            server, port = create_server(config)  # default store: SQLite in the data dir
            await server.start()
            try:
                assert server.store.dialect == "sqlite" and (tmp_path / "jobs.db").exists()
                from workmesh.workers import Worker, WorkerConfig

                worker = Worker([echo], capacity=2)
                await worker.start(WorkerConfig(registry=registry.config, drain_grace=0.0))
                try:
                    import grpc

                    from workmesh.v1 import gateway_pb2_grpc

                    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                        stub = gateway_pb2_grpc.GatewayStub(channel)

                        async def listed():
                            reply = await stub.ListWorkflowTypes(g.ListWorkflowTypesRequest())
                            return any(t.type.name == "echo" for t in reply.types)

                        await eventually_async(listed)
                        job = (await stub.SubmitJob(g.SubmitJobRequest(workflow_type="echo"))).job
                        events = [e async for e in stub.WatchJob(g.WatchJobRequest(job_id=job.job_id))]
                        assert terminal(events) == c.JOB_STATUS_SUCCEEDED

                        async def swept():
                            return await server.store.get(job.job_id) is None

                        await eventually_async(swept, timeout=15)
                finally:
                    await worker.stop(grace=0)
            finally:
                await server.stop(0)

    run(main())


def test_job_trace_spans_and_metrics():
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = configure_telemetry(
        "workmesh-gateway",
        config=TelemetryConfig("workmesh-gateway", "t1"),
        span_exporter=spans,
        metric_readers=[reader],
    )

    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            job = await mesh.submit("echo")
            assert terminal(await mesh.follow(job.job_id)) == c.JOB_STATUS_SUCCEEDED
            record = await mesh.store.get(job.job_id)
            return await mesh.job(job.job_id), record

    try:
        job, record = run(main())
        # The job's trace id is the submit span's; the attempt span is its child.
        assert job.trace_id and job.trace_id == trace_id_from_carrier(record.trace_parent)
        by_name = {s.name: s for s in spans.get_finished_spans()}
        submit, attempt = by_name["job.submit"], by_name["job.attempt"]
        assert format(submit.context.trace_id, "032x") == job.trace_id
        assert attempt.context.trace_id == submit.context.trace_id
        assert attempt.parent.span_id == submit.context.span_id
        assert attempt.attributes[ATTR_JOB_ID] == job.job_id and attempt.attributes[ATTR_ATTEMPT] == 1
        assert attempt.attributes[ATTR_INSTANCE] == job.instance_id
        names = {
            m.name: m
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }
        states = {p.attributes["state"] for p in names["workmesh.gateway.job.transitions"].data.data_points}
        assert {"QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED"} <= states
        assert "workmesh.gateway.dispatch.latency" in names
    finally:
        telemetry.shutdown()
        _tracing.reset_tracing_for_tests()
        install_meter_provider(metrics.NoOpMeterProvider())
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_workmesh", False)]:
            root.removeHandler(handler)
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
