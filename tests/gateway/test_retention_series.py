"""``WORKMESH_JOB_TTL`` removes a job's series with the job, and never the job alone.

Real parts: the embedded registry, an in-process gateway (SQLite store) with a short TTL, an
in-process worker writing series through ``ctx.series``, and a results service over Parquet,
registered with a GRPC health check as ``workmesh results`` registers itself.
"""

from __future__ import annotations

import contextlib

import grpc

from tests.gateway.mesh import terminal
from tests.series.workflows import series_async
from tests.support import eventually_async, free_port, run
from workmesh.registry import EmbeddedRegistry, Registrar, ServiceRegistration, find_service
from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import NotFound
from workmesh.services.gateway import GatewayConfig, create_server
from workmesh.services.results import ParquetStore, ResultsConfig
from workmesh.services.results import create_server as create_results_server
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc
from workmesh.workers import Worker, WorkerConfig
from workmesh.workers._series import ResultsConnection


@contextlib.asynccontextmanager
async def results_service(root, port: int):
    server, _ = create_results_server(
        ResultsConfig(listen=f"127.0.0.1:{port}", compaction_delay=-1), ParquetStore(root)
    )
    await server.start()
    from grpc_health.v1 import health_pb2

    for name in ("", "workmesh-results"):
        await server.health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    try:
        yield server
    finally:
        await server.stop(0)
        await server.results_store.close()


def test_retention_deletes_series_then_job_and_keeps_the_job_while_results_is_down(tmp_path):
    async def main():
        port = free_port()
        root = tmp_path / "series"
        async with EmbeddedRegistry() as registry:
            registration = ServiceRegistration(
                name="workmesh-results",
                service_id="workmesh-results-t",
                address="127.0.0.1",
                port=port,
                grpc_check=f"127.0.0.1:{port}/workmesh-results",
                check_interval="1s",
            )  # Consul's minimum
            config = GatewayConfig(address="127.0.0.1:0", registry=registry.config, data_dir=str(tmp_path), job_ttl=1.0)
            gateway, gateway_port = create_server(config)
            worker = Worker([series_async], series_factory=ResultsConnection(registry=registry.config))
            async with Registrar(registry.config, [registration]):
                results = results_service(root, port)
                await results.__aenter__()
                await gateway.start()
                await worker.start(WorkerConfig(registry=registry.config, drain_grace=0.0))
                try:
                    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway_port}") as channel:
                        stub = gateway_pb2_grpc.GatewayStub(channel)

                        async def listed():
                            reply = await stub.ListWorkflowTypes(g.ListWorkflowTypesRequest())
                            return any(t.type.name == "series-async" for t in reply.types)

                        await eventually_async(listed, timeout=30)

                        async def results_passing():
                            return await find_service(registry.config, "workmesh-results")

                        await eventually_async(results_passing, timeout=30)
                        job = (await stub.SubmitJob(g.SubmitJobRequest(workflow_type="series-async"))).job.job_id
                        events = [e async for e in stub.WatchJob(g.WatchJobRequest(job_id=job))]
                        assert terminal(events) == c.JOB_STATUS_SUCCEEDED
                        async with ResultsClient(f"127.0.0.1:{port}") as client:
                            assert len(await client.list_series(job)) == 2

                        # results goes down before the TTL passes: the job must stay
                        await results.__aexit__(None, None, None)
                        results = None

                        async def kept_twice():
                            return gateway.retention_kept >= 2

                        await eventually_async(kept_twice, timeout=30)
                        assert await gateway.store.get(job) is not None
                        assert (root / job).exists(), "the series are still there"

                        # results is back: the series go, then the job
                        results = results_service(root, port)
                        await results.__aenter__()

                        async def swept():
                            return await gateway.store.get(job) is None

                        await eventually_async(swept, timeout=30)
                        assert not (root / job).exists()
                        async with ResultsClient(f"127.0.0.1:{port}") as client:
                            try:
                                await client.list_series(job)
                                raise AssertionError("the job's series are still listed")
                            except NotFound as exc:
                                assert "was deleted" in str(exc)
                finally:
                    await worker.stop(grace=0)
                    await gateway.stop(0)
                    await worker.series_factory.close()
                    if results is not None:
                        await results.__aexit__(None, None, None)

    run(main())
