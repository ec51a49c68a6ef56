"""Parameter constraints through the gateway (issue 13 point 5): a real worker process declares
``end > start`` and ``min_temperature <= max_temperature``; the gateway shows them in
ListWorkflowTypes and refuses a job that breaks one before storing or dispatching it."""

from __future__ import annotations

import grpc

from tests.gateway.mesh import Mesh
from tests.support import run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g


def test_gateway_shows_constraints_and_refuses_a_broken_one_before_storing(procs):
    async def main():
        async with Mesh() as mesh:
            procs.start(
                "-m",
                "tests.gateway.worker_main",
                mesh.registry.address,
                "tests.gateway.versioned:worker_period",
                name="worker",
            )
            await mesh.wait_instances("period", 1)
            specs = {p.name: p for p in (await mesh.types())["period"].type.params}
            assert [(k.op, k.other) for k in specs["end"].constraints] == [(c.CONSTRAINT_OP_GREATER, "start")]
            assert [(k.op, k.other) for k in specs["min_temperature"].constraints] == [
                (c.CONSTRAINT_OP_LESS_EQUAL, "max_temperature")
            ]

            cases = [
                (
                    {"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
                    "params.end",
                    "params.start",
                    "end > start",
                ),
                (
                    {"start": "2024-01-01", "end": "2024-01-02", "min_temperature": 90.0},
                    "params.min_temperature",
                    "params.max_temperature",
                    "min_temperature <= max_temperature",
                ),
            ]
            for params, left, right, rule in cases:
                try:
                    await mesh.submit("period", **params)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert left in exc.details() and right in exc.details() and rule in exc.details(), exc.details()
                else:
                    raise AssertionError(f"{params} was accepted")
            # Nothing was stored for the refused jobs.
            assert list((await mesh.stub.ListJobs(g.ListJobsRequest())).jobs) == []

            job = await mesh.submit("period", start="2024-01-01", end="2024-01-03", max_temperature=50.0)
            done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            assert done.result.outputs["hours"] == 48.0

    run(main())
