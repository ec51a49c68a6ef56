"""Issue 9, defect 9: lease take-over must never run a job twice — made deterministic.

The race: a replica decides to dispatch a job and stalls (CPU starvation, a GC pause, a slow
disk) at the lease boundary for longer than the lease. Its lease expires and the other replica
claims the job, still QUEUED in the store, and runs it. When the stalled replica resumes it
must not run the job too. ``WORKMESH_FAULT_STALL_DISPATCH`` blocks the gateway's whole event
loop once, at the first dispatch, right there (no renewals either, as in a real stall); the
second worker is bigger, so the replica that takes over routes the job there, where the
worker's own "same job id, same attempt" check cannot hide a second run.
"""

from __future__ import annotations

from tests.chaos.support import check_once, idle, runs
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

STALL = "6"  # seconds: three lease lifetimes (chaos gateways use WORKMESH_LEASE_SECONDS=2)


def _stalled_pair(cluster, postgres_url, log, fault: str = "WORKMESH_FAULT_STALL_DISPATCH"):
    """Replica a (stalls at its first dispatch) and b on one database, workers w1 (big) and w2.

    b first runs a long job on w1: with a job in flight there, b routes the next job to w2, while
    a, with nothing in flight, routes to the bigger w1. So the job a stalls on and b takes over
    lands on two different workers, where a second run cannot hide.
    """
    a = cluster.gateway(database_url=postgres_url, env={fault: STALL})
    b = cluster.gateway(database_url=postgres_url)
    big = cluster.worker(capacity=8)
    cluster.worker(capacity=4)
    for gw in (a, b):
        gw.wait_types("chaos-record", 2)
    blocker = b.submit(log=log, seconds=60, steps=60).job_id
    assert b.wait_status(blocker, c.JOB_STATUS_RUNNING).instance_id == big
    return a, b, blocker


def _logged(cluster, gateway, text: str) -> bool:
    return text in cluster.procs.log_of(gateway.proc)


def test_a_replica_stalled_past_its_lease_does_not_run_the_job_again(postgres_url, cluster, tmp_path):
    log = tmp_path / "runs.log"
    a, b, blocker = _stalled_pair(cluster, postgres_url, log)
    job_id = a.submit(log=log, seconds=1.0, steps=4).job_id
    eventually(lambda: _logged(cluster, a, "stalling the event loop"), timeout=15)
    done = b.wait_terminal([job_id], timeout=60)[job_id]  # b took it over once the lease expired
    assert done.status == c.JOB_STATUS_SUCCEEDED
    eventually(lambda: _logged(cluster, a, "stall over"), timeout=30)
    # a is awake again: once it drives nothing, every run it might have started is on record.
    eventually(lambda: idle(a), timeout=30)
    counts = runs(log)
    assert counts[job_id] == 1, f"the job's handler ran {counts[job_id]} times"
    check_once(b.events(job_id))
    assert a.proc.poll() is None  # stalled, not dead
    b.stub.CancelJob(g.CancelJobRequest(job_id=blocker), timeout=30)


def test_a_replica_killed_at_the_lease_boundary_leaves_the_job_to_the_other(postgres_url, cluster, tmp_path):
    log = tmp_path / "runs.log"
    a, b, blocker = _stalled_pair(cluster, postgres_url, log)
    job_id = a.submit(log=log, seconds=1.0, steps=4).job_id
    eventually(lambda: _logged(cluster, a, "stalling the event loop"), timeout=15)
    cluster.kill(a.proc)
    done = b.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED
    assert runs(log)[job_id] == 1
    check_once(b.events(job_id))
    b.stub.CancelJob(g.CancelJobRequest(job_id=blocker), timeout=30)


def test_a_replica_killed_after_recording_a_dispatch_leaves_one_run_and_one_attempt(postgres_url, cluster, tmp_path):
    """a records the dispatch and dies before its worker hears of the job: b re-attaches, the
    worker does not know the job, so that attempt never happened — it runs once, as attempt 1."""
    log = tmp_path / "runs.log"
    a, b, blocker = _stalled_pair(cluster, postgres_url, log, fault="WORKMESH_FAULT_STALL_EXECUTE")
    # a sends the job to its worker before it answers the client, so the stall comes before the
    # answer: submit without waiting for it and learn the job's id from b (the store is shared).
    params = {k: c.ParamValue(string_value=str(v)) for k, v in {"log": log, "seconds": 1.0, "steps": 4}.items()}
    answer = a.stub.SubmitJob.future(g.SubmitJobRequest(workflow_type="chaos-record", params=params), timeout=30)
    eventually(lambda: _logged(cluster, a, "stalling the event loop"), timeout=15)
    (job,) = [j for j in b.stub.ListJobs(g.ListJobsRequest(page_size=100), timeout=30).jobs if j.job_id != blocker]
    job_id = job.job_id
    assert job.status == c.JOB_STATUS_DISPATCHED  # recorded before the worker is told
    cluster.kill(a.proc)
    answer.cancel()  # held until here: a call whose future is collected is cancelled
    done = b.wait_terminal([job_id], timeout=60)[job_id]
    assert done.status == c.JOB_STATUS_SUCCEEDED
    assert runs(log)[job_id] == 1
    assert done.attempts == 1
    check_once(b.events(job_id))
    b.stub.CancelJob(g.CancelJobRequest(job_id=blocker), timeout=30)
