"""RetryJob through a real gateway and worker (in process): a new attempt of the same job."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.gateway.mesh import Mesh, statuses
from tests.support import run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, sleep


def test_a_cancelled_running_job_retried_at_once_runs_again_under_its_id():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([sleep, echo])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds=300.0, steps=300)
            await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))
            await mesh.wait_status(job.job_id, c.JOB_STATUS_CANCELLED)
            # At once: the dispatcher may still be writing the attempt's end.
            reply = await mesh.stub.RetryJob(g.RetryJobRequest(job_id=job.job_id, idempotency_key="k"))
            assert reply.job.job_id == job.job_id and reply.job.status == c.JOB_STATUS_QUEUED
            again = await mesh.stub.RetryJob(g.RetryJobRequest(job_id=job.job_id, idempotency_key="k"))
            assert again.existing and again.job.job_id == job.job_id
            running = await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            assert running.attempts == 2
            got = await mesh.stub.GetJob(g.GetJobRequest(job_id=job.job_id))
            assert [(a.attempt, a.outcome) for a in got.attempt_history] == [(1, "CANCELLED"), (2, "")]
            watch = asyncio.ensure_future(mesh.follow(job.job_id, timeout=60))
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))
            events = await watch  # from the start, through the first end, to the second
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            seen = statuses(events)
            assert seen.count(c.JOB_STATUS_CANCELLED) == 2 and seen[-1] == c.JOB_STATUS_CANCELLED
            retried = [e.status.reason for e in events if e.WhichOneof("payload") == "status"]
            assert "RETRIED: attempt 2 after CANCELLED (RetryJob)" in retried

    run(main())


def test_a_succeeded_job_is_not_retried():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            job = await mesh.submit("echo", message="hi")
            done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await mesh.stub.RetryJob(g.RetryJobRequest(job_id=job.job_id))
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "SUCCEEDED" in refused.value.details()
            assert (await mesh.job(job.job_id)).last_seq == done.last_seq
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await mesh.stub.RetryJob(g.RetryJobRequest(job_id="no-such-job"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as empty:
                await mesh.stub.RetryJob(g.RetryJobRequest())
            assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "job_id" in empty.value.details()

    run(main())
