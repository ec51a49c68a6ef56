"""Cancel, timeout and delete of running jobs, and a hard crash of every worker of a type, with
real processes on the default (SQLite) job store — as the OMOTES integration tests do."""

from __future__ import annotations

import grpc
import pytest

from tests.chaos.support import CRASH, check_once, runs
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g


def test_cancel_timeout_and_delete_of_running_jobs(cluster, tmp_path):
    log = tmp_path / "runs.log"
    gw = cluster.gateway()
    cluster.worker(capacity=4)
    gw.wait_types("chaos-record", 1)

    cancelled = gw.submit(log=log, seconds=60, steps=600).job_id
    timed_out = gw.submit(log=log, seconds=60, steps=600, timeout=1.5).job_id
    deleted = gw.submit(log=log, seconds=60, steps=600).job_id
    for job_id in (cancelled, deleted):
        gw.wait_status(job_id, c.JOB_STATUS_RUNNING)

    gw.stub.CancelJob(g.CancelJobRequest(job_id=cancelled, reason="user asked"), timeout=30)
    events = gw.events(cancelled, timeout=30)
    check_once(events, c.JOB_STATUS_CANCELLED)
    assert "user asked" in events[-1].status.reason

    events = gw.events(timed_out, timeout=30)
    check_once(events, c.JOB_STATUS_TIMED_OUT)
    assert gw.job(timed_out).error.code == "TIMED_OUT"

    watch = gw.stub.WatchJob(g.WatchJobRequest(job_id=deleted), timeout=60)
    first = next(watch)
    gw.stub.DeleteJob(g.DeleteJobRequest(job_id=deleted), timeout=30)
    check_once([first, *watch], c.JOB_STATUS_CANCELLED)  # CANCELLED first ...
    with pytest.raises(grpc.RpcError) as info:  # ... then gone
        gw.job(deleted)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert all(n == 1 for n in runs(log).values())


def test_hard_crash_of_every_worker_fails_after_the_retry_budget(cluster):
    gw = cluster.gateway()
    for _ in range(2):  # each takes one attempt of the job and dies with it
        cluster.worker(CRASH, capacity=1, prefix="crash")
    gw.wait_types("chaos-crash", 2)
    job_id = gw.submit("chaos-crash").job_id
    events = gw.events(job_id, timeout=60)
    check_once(events, c.JOB_STATUS_FAILED)
    job = gw.job(job_id)
    assert job.error.code == "WORKER_LOST" and "attempt 2 of 2" in job.error.message
    assert [s for s in (e.status.status for e in events if e.WhichOneof("payload") == "status")].count(
        c.JOB_STATUS_DISPATCHED
    ) == 2
    # Both really crashed (the gateway may notice a closed connection a moment before the exit).
    eventually(lambda: all(proc.poll() == -9 for proc in cluster.workers.values()), timeout=10)
