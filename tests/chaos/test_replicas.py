"""Two gateway replicas on one PostgreSQL: a job is driven by exactly one replica, CancelJob and
DeleteJob work on the replica that does not drive the job, and when one replica is SIGKILLed mid-run
the other takes its jobs over on lease expiry (re-attaching): no job lost or run twice."""

from __future__ import annotations

import grpc
import pytest

from tests.chaos.support import check_once, idle, runs
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g


def test_two_replicas_one_killed_mid_run(postgres_url, cluster, tmp_path):
    log = tmp_path / "runs.log"
    a = cluster.gateway(database_url=postgres_url)
    b = cluster.gateway(database_url=postgres_url)
    for _ in range(2):
        cluster.worker(capacity=8)
    a.wait_types("chaos-record", 2)
    b.wait_types("chaos-record", 2)

    # Cancel and delete on the replica that does not drive the job.
    to_cancel = a.submit(log=log, seconds=60, steps=60).job_id
    to_delete = a.submit(log=log, seconds=60, steps=60).job_id
    for job_id in (to_cancel, to_delete):
        a.wait_status(job_id, c.JOB_STATUS_RUNNING)
    b.stub.CancelJob(g.CancelJobRequest(job_id=to_cancel, reason="from replica b"), timeout=30)
    assert b.wait_status(to_cancel, c.JOB_STATUS_CANCELLED, timeout=15).status == c.JOB_STATUS_CANCELLED
    check_once(a.events(to_cancel), c.JOB_STATUS_CANCELLED)
    watch = a.stub.WatchJob(g.WatchJobRequest(job_id=to_delete), timeout=60)
    first = next(watch)  # the watch is established before the delete
    b.stub.DeleteJob(g.DeleteJobRequest(job_id=to_delete), timeout=30)
    # A client watching it sees it end CANCELLED (the stream stops at the terminal event) ...
    check_once([first, *watch], c.JOB_STATUS_CANCELLED)
    # ... and then it is gone, on both replicas.
    for gw in (a, b):
        with pytest.raises(grpc.RpcError) as info:
            gw.job(to_delete)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    # Jobs accepted by both replicas; replica a dies while they run.
    jobs = [(a if i % 2 else b).submit(log=log, seconds=3.0, steps=15).job_id for i in range(14)]

    def running():
        return sum(b.job(j).status == c.JOB_STATUS_RUNNING for j in jobs) >= 10

    eventually(running, timeout=30)
    cluster.kill(a.proc)
    done = b.wait_terminal(jobs, timeout=90)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    counts = runs(log)
    assert all(counts[j] == 1 for j in jobs), {j: counts[j] for j in jobs}
    assert all(done[j].attempts == 1 for j in jobs)  # taken over by re-attaching, not re-run
    for job_id in jobs:
        check_once(b.events(job_id))
    eventually(lambda: idle(b), timeout=30)  # the self-check: no lease, slot or job left over
