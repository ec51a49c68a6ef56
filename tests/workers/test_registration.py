"""A worker registers its types in a real (embedded) registry, passes its gRPC health check, and
deregisters when it drains. Runs against the embedded registry this package ships."""

from __future__ import annotations

from tests.support import eventually_async, run
from workmesh.registry import WORKFLOW_TAG, EmbeddedRegistry, find_service, service_name
from workmesh.workers import SDK_VERSION, Worker, WorkerConfig
from workmesh.workers.examples import basic


def test_types_register_pass_their_checks_and_deregister_on_drain():
    async def body():
        async with EmbeddedRegistry() as registry:
            worker = Worker([basic.echo, basic.sleep], capacity=7)
            config = WorkerConfig(registry=registry.config, instance_id="reg-test")
            port = await worker.start(config)
            try:

                async def both_passing():
                    found = {t: await find_service(registry.config, service_name(t)) for t in ("echo", "sleep")}
                    return found if all(found.values()) else None

                # Passing means the registry's GRPC check reached our grpc.health.v1 for that type.
                found = await eventually_async(both_passing)
                (echo,) = found["echo"]
                assert echo.service_id == "workmesh-wf-echo-reg-test"
                assert (echo.address, echo.port) == ("127.0.0.1", port)
                assert WORKFLOW_TAG in echo.tags
                assert dict(echo.meta) == {
                    "workflow_type": "echo",
                    "version": "1.0.0",
                    "capacity": "7",
                    "sdk_version": SDK_VERSION,
                }
                await worker.drain(grace=0)

                async def gone():
                    return not any([await find_service(registry.config, service_name(t)) for t in ("echo", "sleep")])

                await eventually_async(gone)
            finally:
                await worker.stop(grace=0)

    run(body())
