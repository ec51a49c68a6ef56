"""Discovery through the registry: types listed with their schema and capacity, changes
streamed, jobs wait queued while no instance can take them."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.gateway.flows import fresh, versioned_new, versioned_old
from tests.gateway.mesh import Mesh, checked, terminal
from tests.support import always_async, eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, sleep

Change = g.WorkflowTypeChange


def test_types_listed_with_schema_instances_and_capacity():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo, sleep], capacity=3)
            await mesh.add_worker([sleep], capacity=2)
            await mesh.wait_instances("sleep", 2)
            await mesh.wait_instances("echo", 1)  # each type registers on its own
            types = await mesh.types()
            assert set(types) == {"echo", "sleep"}
            info = types["sleep"]
            assert info.capacity == 5 and info.free_capacity == 5 and types["echo"].capacity == 3
            assert info.type.version == "1.0.0" and info.type.description
            seconds = next(p for p in info.type.params if p.name == "seconds")
            assert seconds.type == c.PARAM_TYPE_FLOAT and seconds.max == 86400.0
            assert seconds.default.float_value == 1.0

    run(main())


def test_watch_types_sends_snapshot_then_added_and_removed():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            # Its first health check's result would come as an UPDATED change after the snapshot.
            await mesh.wait_checked("echo")
            stream = mesh.stub.WatchWorkflowTypes(g.WatchWorkflowTypesRequest())
            first = await asyncio.wait_for(stream.read(), 10)
            assert first.kind == Change.KIND_ADDED and first.initial and first.type.type.name == "echo"
            newcomer = await mesh.add_worker([fresh])
            change = await asyncio.wait_for(stream.read(), 10)
            assert change.kind == Change.KIND_ADDED and not change.initial
            assert change.type.type.name == "fresh" and change.type.type.version == "2.0.0"
            # The newcomer's first health check result comes as an update (if not yet in the
            # ADDED change): read up to it, so the next change is the one the stop makes.
            while not all(map(checked, change.type.instances)):
                change = await asyncio.wait_for(stream.read(), 30)
                assert change.kind == Change.KIND_UPDATED and change.type.type.name == "fresh", change
            await newcomer.stop(grace=0)
            change = await asyncio.wait_for(stream.read(), 10)
            assert change.kind == Change.KIND_REMOVED and change.type.type.name == "fresh"
            assert set(await mesh.types()) == {"echo"}
            stream.cancel()

    run(main())


def test_second_instance_is_an_update():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo], capacity=2)
            await mesh.wait_instances("echo", 1)
            # Its first health check's result would come as an UPDATED change after the snapshot.
            await mesh.wait_checked("echo")
            stream = mesh.stub.WatchWorkflowTypes(g.WatchWorkflowTypesRequest())
            assert (await asyncio.wait_for(stream.read(), 10)).initial
            await mesh.add_worker([echo], capacity=3)
            change = await asyncio.wait_for(stream.read(), 10)
            assert change.kind == Change.KIND_UPDATED
            assert change.type.healthy_instances == 2 and change.type.capacity == 5
            stream.cancel()

    run(main())


def test_job_waits_queued_until_an_instance_appears():
    async def main():
        async with Mesh() as mesh:
            first = await mesh.add_worker([sleep], capacity=1)
            await mesh.wait_instances("sleep", 1)
            await first.stop(grace=0)
            await eventually_async(lambda: _absent(mesh, "sleep"))
            # The type is known from before: the job is accepted and waits.
            job = await mesh.submit("sleep", seconds=0.05, steps=1)

            async def queued() -> bool:
                return (await mesh.job(job.job_id)).status == c.JOB_STATUS_QUEUED

            await always_async(queued)  # no worker to choose: it stays queued
            await mesh.add_worker([sleep])
            assert terminal(await mesh.follow(job.job_id)) == c.JOB_STATUS_SUCCEEDED

    run(main())


async def _absent(mesh: Mesh, name: str) -> bool:
    return name not in await mesh.types()


def test_job_waits_for_free_capacity_then_goes_to_the_new_instance():
    async def main():
        async with Mesh() as mesh:
            busy_worker = await mesh.add_worker([sleep], capacity=1)
            await mesh.wait_instances("sleep", 1)
            busy = await mesh.submit("sleep", seconds=30.0, steps=300)
            await mesh.wait_status(busy.job_id, c.JOB_STATUS_RUNNING)
            waiting = await mesh.submit("sleep", seconds=0.05, steps=1)
            assert (await mesh.job(waiting.job_id)).status == c.JOB_STATUS_QUEUED
            assert (await mesh.types())["sleep"].free_capacity == 0
            second = await mesh.add_worker([sleep], capacity=1)
            assert terminal(await mesh.follow(waiting.job_id)) == c.JOB_STATUS_SUCCEEDED
            assert (await mesh.job(waiting.job_id)).instance_id == second.instance_id
            assert (await mesh.job(busy.job_id)).instance_id == busy_worker.instance_id

    run(main())


def test_load_is_spread_to_the_least_busy_instance():
    async def main():
        async with Mesh() as mesh:
            a = await mesh.add_worker([sleep], capacity=4)
            b = await mesh.add_worker([sleep], capacity=4)
            await mesh.wait_instances("sleep", 2)
            jobs = [await mesh.submit("sleep", seconds=30.0, steps=300) for _ in range(4)]
            for job in jobs:
                await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            placed = [(await mesh.job(j.job_id)).instance_id for j in jobs]
            assert placed.count(a.instance_id) == 2 and placed.count(b.instance_id) == 2

    run(main())


def test_health_and_reflection_are_served():
    async def main():
        async with Mesh() as mesh:
            health = health_pb2_grpc.HealthStub(mesh.channel)
            for service in ("", "workmesh.v1.Gateway"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(mesh.channel)
            call = refl.ServerReflectionInfo()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            reply = await call.read()
            await call.done_writing()
            names = {s.name for s in reply.list_services_response.service}
            assert "workmesh.v1.Gateway" in names and "grpc.health.v1.Health" in names

    run(main())


def test_one_channel_and_one_describe_per_worker_process():
    async def main():
        async with Mesh() as mesh:
            worker = await mesh.add_worker([echo, sleep], capacity=3)
            await mesh.wait_instances("sleep", 1)
            await mesh.wait_instances("echo", 1)
            catalog = mesh.gateway.catalog
            [inst] = catalog.instances()  # two Consul services, one process
            assert inst.instance_id == worker.instance_id and inst.serves() == {"echo", "sleep"}
            assert inst.capacity == 3 and inst.key == f"127.0.0.1:{worker.port}"
            await worker.stop(grace=0)
            await eventually_async(lambda: asyncio.sleep(0, catalog.instances() == []))
            assert set(await mesh.types()) == set()

    run(main())


def test_newest_version_of_a_type_defines_its_schema():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([versioned_old])
            await mesh.wait_instances("versioned", 1)
            assert (await mesh.types())["versioned"].type.version == "1.9.0"
            await mesh.add_worker([versioned_new])
            await mesh.wait_instances("versioned", 2)
            info = (await mesh.types())["versioned"]
            assert info.type.version == "1.10.0" and info.type.description == "new"  # 1.10 > 1.9
            assert [p.name for p in info.type.params] == ["n", "label"]

    run(main())
