"""Restart PostgreSQL while jobs run: the gateway reconnects and every job it acknowledged
(SubmitJob answered OK) is computed and ends SUCCEEDED, its events without gaps."""

from __future__ import annotations

import threading

import grpc

from tests.chaos.support import check_once, idle, runs
from tests.support import eventually
from workmesh.v1 import common_pb2 as c


def test_postgres_restart_while_jobs_run(postgres_server, postgres_url, cluster, tmp_path):
    log = tmp_path / "runs.log"
    gw = cluster.gateway(database_url=postgres_url)
    for _ in range(2):
        cluster.worker(capacity=8)
    gw.wait_types("chaos-record", 2)
    acknowledged = [gw.submit(log=log, seconds=3.0, steps=30).job_id for _ in range(10)]
    eventually(lambda: sum(gw.job(j).status == c.JOB_STATUS_RUNNING for j in acknowledged) >= 8, timeout=30)

    refused: list[grpc.StatusCode] = []
    stop = threading.Event()

    def keep_submitting():
        # While the database restarts: whatever the gateway acknowledges must not be lost.
        while not stop.is_set() and len(acknowledged) < 40:
            try:
                acknowledged.append(gw.submit(log=log, seconds=0.5, steps=5).job_id)
            except grpc.RpcError as exc:
                refused.append(exc.code())
            stop.wait(0.05)

    submitter = threading.Thread(target=keep_submitting, daemon=True)
    submitter.start()
    try:
        postgres_server.restart("fast")
    finally:
        stop.set()
        submitter.join(30)
    # Only "try again" answers are acceptable for refused submissions.
    assert set(refused) <= {grpc.StatusCode.UNAVAILABLE}, refused
    done = gw.wait_terminal(acknowledged, timeout=120)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}, {
        j: c.JobStatus.Name(job.status) for j, job in done.items() if job.status != c.JOB_STATUS_SUCCEEDED
    }
    for job_id in acknowledged:
        check_once(gw.events(job_id))
    eventually(lambda: idle(gw), timeout=30)  # the self-check: no lease, slot or job left over


def test_postgres_down_past_the_store_retry_budget(postgres_server, postgres_url, cluster, tmp_path):
    """The database stays away longer than the store retries (1 s here): the gateway lets go
    of its running jobs without writing anything half, keeps its queue, and once PostgreSQL is
    back claims the jobs again and re-attaches — each handler still ran once."""
    log = tmp_path / "runs.log"
    gw = cluster.gateway(database_url=postgres_url, env={"WORKMESH_STORE_RETRY": "1"})
    cluster.worker(capacity=4)
    gw.wait_types("chaos-record", 1)
    jobs = [gw.submit(log=log, seconds=4.0, steps=40).job_id for _ in range(6)]  # 4 run, 2 wait
    eventually(lambda: sum(gw.job(j).status == c.JOB_STATUS_RUNNING for j in jobs) >= 4, timeout=30)
    postgres_server.stop("fast")
    try:
        # The gateway has met the outage: a running job's write failed past the retry budget.
        eventually(lambda: "store unavailable" in cluster.procs.log_of(gw.proc), timeout=30, interval=0.2)
    finally:
        postgres_server.start()
    done = gw.wait_terminal(jobs, timeout=90)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    counts = runs(log)
    assert all(counts[j] == 1 for j in jobs), {j: counts[j] for j in jobs}
    for job_id in jobs:
        check_once(gw.events(job_id))
    eventually(lambda: idle(gw), timeout=30)
