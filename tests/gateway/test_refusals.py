"""A worker that refuses a job before starting it costs the job no attempt (issue 13 point 6).

A draining worker (SIGTERM in a rolling upgrade) leaves the registry first, but a gateway sees
that a moment later and may still dispatch to it; a full worker (another gateway's jobs) refuses
too. Either answer means the job never started there: it runs elsewhere, or later, as the same
attempt — even a job with ``max_attempts=1``.
"""

from __future__ import annotations

from tests.gateway.mesh import Mesh
from tests.support import eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.workers import Context, workflow


@workflow(name="once", version="1.0.0", params=[], max_attempts=1)
async def once(ctx: Context) -> dict:
    return {"instance": ctx.instance_id}


async def requeued(mesh: Mesh, job_id: str, why: str) -> None:
    async def seen():
        events = await mesh.store.events(job_id)
        errors = [e.error.message for e in events if e.WhichOneof("payload") == "error"]
        assert not errors, f"the refusal ended the job: {errors}"
        return any(
            e.WhichOneof("payload") == "status" and e.status.status == c.JOB_STATUS_QUEUED and why in e.status.reason
            for e in events
        )

    await eventually_async(seen, timeout=15)


def test_a_job_refused_by_a_draining_worker_runs_elsewhere_as_the_same_attempt():
    async def main():
        async with Mesh() as mesh:
            draining = await mesh.add_worker([once], capacity=2)
            await mesh.wait_instances("once", 1)
            draining.draining = True  # as between its SIGTERM and the gateway seeing it leave
            job = await mesh.submit("once")
            await requeued(mesh, job.job_id, "worker is draining")
            other = await mesh.add_worker([once], capacity=2)
            done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED)
            assert done.status == c.JOB_STATUS_SUCCEEDED, done.error.message
            assert (done.attempts, done.result.outputs["instance"]) == (1, other.instance_id)
            assert [(a.attempt, a.outcome) for a in done.attempt_history] == [(1, "SUCCEEDED")]

    run(main())


def test_a_job_refused_by_a_full_worker_runs_there_later_as_the_same_attempt():
    async def main():
        async with Mesh() as mesh:
            worker = await mesh.add_worker([once], capacity=1)
            await mesh.wait_instances("once", 1)
            worker.capacity = 0  # its one slot taken by a job of another gateway
            job = await mesh.submit("once")
            await requeued(mesh, job.job_id, "at capacity")
            worker.capacity = 1
            done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED)
            assert done.status == c.JOB_STATUS_SUCCEEDED, done.error.message
            assert done.attempts == 1 and [a.outcome for a in done.attempt_history] == ["SUCCEEDED"]

    run(main())
