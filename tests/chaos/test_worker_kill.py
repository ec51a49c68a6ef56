"""SIGKILL a worker in the middle of a job, 20 times, with two workers of the type (the killed
one is restarted each time): every job SUCCEEDED, each result delivered once to the client."""

from __future__ import annotations

import pytest

from tests.chaos.support import check_once, idle
from tests.support import eventually
from workmesh.v1 import common_pb2 as c

ROUNDS = 20


# Twenty kills, each waiting for a replacement worker to pass its health check: ~2 min on a quiet
# machine, more under background load (the chaos runs of issue 9); the budget is not the point.
@pytest.mark.timeout(420)
def test_twenty_worker_kills_mid_job(cluster, tmp_path):
    gw = cluster.gateway()
    for _ in range(2):
        cluster.worker(capacity=2)
    gw.wait_types("chaos-record", 2)
    jobs = []
    for _ in range(ROUNDS):
        job = gw.submit(log=tmp_path / "runs.log", seconds=1.0, steps=10).job_id
        jobs.append(job)

        def mid_job(job_id=job):
            got = gw.job(job_id)
            return got if got.status == c.JOB_STATUS_RUNNING and got.progress.fraction > 0 else None

        victim = eventually(mid_job, timeout=30, interval=0.02).instance_id
        cluster.kill(cluster.workers.pop(victim))
        # The replacement must be up before the next kill, so a job always has somewhere to go.
        cluster.wait_passing("chaos-record", cluster.worker(capacity=2))
    done = gw.wait_terminal(jobs, timeout=90)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    for job_id in jobs:
        events = gw.events(job_id)
        check_once(events)
        lost = [
            e.status.reason
            for e in events
            if e.WhichOneof("payload") == "status" and e.status.status == c.JOB_STATUS_QUEUED and e.status.reason
        ]
        assert lost and lost[0].startswith("WORKER_LOST"), lost  # it really lost a worker
        assert done[job_id].attempts >= 2
    eventually(lambda: idle(gw), timeout=30)  # the self-check: no lease, slot or job left over
