"""Worker loss: a worker process killed mid-job → the attempt is lost, the job runs elsewhere;
past the type's attempt budget → FAILED with WORKER_LOST."""

from __future__ import annotations

import signal

from tests.gateway.mesh import Mesh, statuses, terminal
from tests.support import eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.workers.examples.basic import sleep


def start_worker(procs, mesh: Mesh, target: str, capacity: int = 4):
    return procs.start("-m", "tests.gateway.worker_main", mesh.registry.address, target, str(capacity), name="worker")


def test_worker_killed_mid_job_is_retried_on_the_other_instance(procs):
    async def main():
        async with Mesh() as mesh:
            victim = start_worker(procs, mesh, "workmesh.workers.examples.basic:worker")
            await mesh.wait_instances("sleep", 1)
            # Long enough to outlast starting the survivor and seeing it listed under load: the
            # kill must come while the job still runs on the victim.
            job = await mesh.submit("sleep", seconds=4.0, steps=40)
            running = await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            survivor = await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 2)
            assert running.instance_id != survivor.instance_id
            procs.stop(victim, signal.SIGKILL)
            events = await mesh.follow(job.job_id)
            assert terminal(events) == c.JOB_STATUS_SUCCEEDED
            lost = [
                e.status
                for e in events
                if e.HasField("status") and e.status.status == c.JOB_STATUS_QUEUED and e.status.reason
            ]
            assert lost and lost[0].reason.startswith("WORKER_LOST")
            final = await mesh.job(job.job_id)
            assert final.attempts == 2 and final.instance_id == survivor.instance_id
            attempts = await mesh.store.attempts(job.job_id)
            assert [(a.attempt, a.instance_id, a.outcome) for a in attempts] == [
                (1, running.instance_id, "LOST"),
                (2, survivor.instance_id, "SUCCEEDED"),
            ]
            # The dead instance is out of rotation: new jobs go to the survivor.
            again = await mesh.submit("sleep", seconds=0.01, steps=1)
            assert terminal(await mesh.follow(again.job_id)) == c.JOB_STATUS_SUCCEEDED
            assert (await mesh.job(again.job_id)).instance_id == survivor.instance_id

    run(main())


def test_job_fails_with_worker_lost_past_the_attempt_budget(procs):
    async def main():
        async with Mesh() as mesh:
            # "retry-budget" declares max_attempts=2; each attempt's worker is killed.
            for attempt in (1, 2):
                proc = start_worker(procs, mesh, "tests.gateway.flows:budget_worker")
                await mesh.wait_instances("retry-budget", 1)
                if attempt == 1:
                    job = await mesh.submit("retry-budget", seconds=30.0)

                async def on_attempt(n=attempt, job_id=job.job_id):
                    got = await mesh.job(job_id)
                    return got.status == c.JOB_STATUS_RUNNING and got.attempts == n

                await eventually_async(on_attempt, timeout=60)
                procs.stop(proc, signal.SIGKILL)
            events = await mesh.follow(job.job_id)
            assert terminal(events) == c.JOB_STATUS_FAILED
            assert statuses(events).count(c.JOB_STATUS_DISPATCHED) == 2
            final = await mesh.job(job.job_id)
            assert final.error.code == "WORKER_LOST" and "attempt 2 of 2" in final.error.message

    run(main())
