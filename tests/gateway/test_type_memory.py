"""Issue 9, defect 7: a workflow type whose workers are all down is still known after a gateway
restart (its jobs wait QUEUED), until nobody has served it for WORKMESH_TYPE_RETENTION."""

from __future__ import annotations

import grpc
import pytest

from tests.gateway import hardening_flows as flows
from tests.gateway.mesh import Mesh, statuses
from tests.support import eventually_async, run
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

Code = grpc.StatusCode


def test_a_type_without_a_live_worker_is_still_known_after_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/jobs.db"

    async def main():
        store = SqlJobStore(url, retry_for=5.0, exclusive=True)
        async with Mesh(store=store) as mesh:
            await mesh.add_worker([flows.typed, flows.nap])
            await mesh.wait_instances("typed", 1)
        await store.close()

        store = SqlJobStore(url, retry_for=5.0, exclusive=True)
        async with Mesh(store=store) as mesh:  # restarted; no worker is up
            job = await mesh.submit("typed", text="waits for a worker")
            assert job.status == c.JOB_STATUS_QUEUED
            # The remembered declaration still validates.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await mesh.stub.SubmitJob(
                    g.SubmitJobRequest(workflow_type="typed", params={"step": c.ParamValue(string_value="soon")})
                )
            assert info.value.code() == Code.INVALID_ARGUMENT and "params.step" in info.value.details()
            await mesh.add_worker([flows.typed, flows.nap])
            assert statuses(await mesh.follow(job.job_id))[-1] == c.JOB_STATUS_SUCCEEDED
        await store.close()

    run(main(), timeout=120.0)


def test_a_type_nobody_served_for_the_retention_is_forgotten_and_not_found_says_so(tmp_path):
    url = f"sqlite:///{tmp_path}/jobs.db"

    async def main():
        store = SqlJobStore(url, retry_for=5.0, exclusive=True)
        async with Mesh(store=store) as mesh:
            await mesh.add_worker([flows.typed])
            await mesh.wait_instances("typed", 1)
        await store.close()

        store = SqlJobStore(url, retry_for=5.0, exclusive=True)
        async with Mesh(store=store, type_retention=0.3) as mesh:

            async def forgotten():
                try:
                    await mesh.submit("typed")
                except grpc.aio.AioRpcError as exc:
                    return exc
                return None

            exc = await eventually_async(forgotten, timeout=10)
            assert exc.code() == Code.NOT_FOUND
            assert "typed" in exc.details() and "WORKMESH_TYPE_RETENTION" in exc.details()
        await store.close()

    run(main(), timeout=120.0)
