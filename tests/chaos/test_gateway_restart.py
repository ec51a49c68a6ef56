"""SIGKILL the gateway with 50 jobs queued or running, restart it: every job ends once, the
running ones were re-attached on their workers (each handler ran exactly once)."""

from __future__ import annotations

from tests.chaos.support import check_once, idle, runs
from tests.support import eventually
from workmesh.v1 import common_pb2 as c


def test_gateway_sigkill_with_50_jobs_then_restart(cluster, tmp_path):
    log = tmp_path / "runs.log"
    gw = cluster.gateway()
    for _ in range(2):
        cluster.worker(capacity=10)
    gw.wait_types("chaos-record", 2)
    long_jobs = [gw.submit(log=log, seconds=4.0, steps=20).job_id for _ in range(20)]
    short_jobs = [gw.submit(log=log, seconds=0.3, steps=3).job_id for _ in range(30)]

    def running():
        jobs = [gw.job(j) for j in long_jobs]
        return [j.job_id for j in jobs if j.status == c.JOB_STATUS_RUNNING and j.progress.fraction > 0]

    eventually(lambda: len(running()) >= 15, timeout=30)
    cluster.kill(gw.proc)
    gw.close()

    restarted = cluster.gateway(port=gw.port)  # same port: same replica id, same data dir
    done = restarted.wait_terminal(long_jobs + short_jobs, timeout=90)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    counts = runs(log)
    assert set(counts) == set(long_jobs + short_jobs)
    assert max(counts.values()) == 1, {j: n for j, n in counts.items() if n > 1}
    for job_id in long_jobs + short_jobs:
        check_once(restarted.events(job_id))
    eventually(lambda: idle(restarted), timeout=30)  # the self-check: no lease, slot or job left over
    # The long jobs were running when the gateway died: followed again, not started again.
    assert all(done[j].attempts == 1 for j in long_jobs), {j: done[j].attempts for j in long_jobs}
