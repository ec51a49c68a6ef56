"""Network partitions on the multi-host bed: a worker host cut off, a gateway replica cut off from
PostgreSQL, a gateway cut off from the registry.

Every partition is healed in ``finally`` (and the namespaces go away at the end of the module
anyway). A job's guarantees are read from the store through the gateways (attempts, instance,
events) and from the ``chaos-record`` log (how many times its handler started).
"""

from __future__ import annotations

import contextlib

import grpc
import pytest

from tests.chaos.support import GATEWAY_ENV, check_once, runs
from tests.multihost.bed import BED_GATEWAY_ENV
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

pytestmark = pytest.mark.multihost

REATTACH_WAIT = float(GATEWAY_ENV["WORKMESH_REATTACH_WAIT"])
STORE_RETRY = float(BED_GATEWAY_ENV["WORKMESH_STORE_RETRY"])
RECORD = "workmesh-wf-chaos-record"


@contextlib.contextmanager
def isolated(bed, host):
    bed.net.isolate(host)
    try:
        yield
    finally:
        bed.net.heal(host)


@contextlib.contextmanager
def blocked(bed, host, peer):
    bed.net.block(host, peer)
    try:
        yield
    finally:
        bed.net.unblock(host, peer)


def healthy(gw, workflow_type):
    types = gw.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=10).types
    return next((t.healthy_instances for t in types if t.type.name == workflow_type), 0)


def running_on(gw, jobs, host, timeout=30):
    """Wait until every job runs; the ids of those on `host`."""
    placed = {j: gw.wait_status(j, c.JOB_STATUS_RUNNING, timeout=timeout).instance_id for j in jobs}
    return [j for j, inst in placed.items() if inst == host]


@contextlib.contextmanager
def worker_cut_off(bed, log, host, seconds, steps):
    """Six jobs through gw1, two per worker; `host` is cut off once they run and its health is
    critical. Yields (gateway, jobs, the jobs on `host`); healed on exit."""
    gw = bed.gateways["gw1"]
    jobs = [gw.submit(log=log, seconds=seconds, steps=steps).job_id for _ in range(6)]
    on_host = running_on(gw, jobs, host)
    assert on_host
    with isolated(bed, host):
        bed.wait_check(RECORD, host, "critical", timeout=15)
        yield gw, jobs, on_host


def test_worker_host_partitioned_briefly_its_jobs_go_on_there(bed, tmp_path):
    log = tmp_path / "runs.log"
    with worker_cut_off(bed, log, "w1", seconds=10, steps=40) as (gw, jobs, on_w1):
        # The gateway has seen w1 leave; healed then, well within the re-attach window.
        eventually(lambda: healthy(gw, "chaos-record") == 2, timeout=15, interval=0.1)
    bed.wait_check(RECORD, "w1", "passing", timeout=20)
    done = gw.wait_terminal(jobs, timeout=60)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    assert all(done[j].instance_id == "w1" and done[j].attempts == 1 for j in on_w1), {
        j: (done[j].instance_id, done[j].attempts) for j in on_w1
    }
    counts = runs(log)
    assert all(counts[j] == 1 for j in jobs), counts
    for job_id in jobs:
        check_once(gw.events(job_id))
    bed.wait_ready()


def test_worker_host_partitioned_past_the_window_its_jobs_run_elsewhere(bed, tmp_path):
    log = tmp_path / "runs.log"
    with worker_cut_off(bed, log, "w2", seconds=6, steps=30) as (gw, jobs, on_w2):

        def moved():
            return all(gw.job(j).attempts == 2 for j in on_w2)

        eventually(moved, timeout=REATTACH_WAIT + 30, interval=0.2)
        done = gw.wait_terminal(jobs, timeout=60)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    assert all(done[j].instance_id != "w2" for j in on_w2)
    # Healed: w2's own run of those jobs may finish now, but its result is never stored.
    bed.wait_check(RECORD, "w2", "passing", timeout=30)
    bed.wait_ready()
    for gateway in bed.gateways.values():
        for job_id in jobs:
            check_once(gateway.events(job_id))
            job = gateway.job(job_id)
            assert job.status == c.JOB_STATUS_SUCCEEDED and job.attempts == (2 if job_id in on_w2 else 1)
    counts = runs(log)
    assert all(counts[j] == (2 if j in on_w2 else 1) for j in jobs), counts


def test_gateway_partitioned_from_postgres_its_jobs_move_to_the_other_replica(bed, tmp_path):
    log = tmp_path / "runs.log"
    gw1, gw2 = bed.gateways["gw1"], bed.gateways["gw2"]
    jobs = [gw1.submit(log=log, seconds=8, steps=32).job_id for _ in range(4)]
    running_on(gw1, jobs, "")
    with blocked(bed, "gw1", "postgres"):
        # gw2 claims them once gw1's leases expire, and re-attaches on the workers.
        done = gw2.wait_terminal(jobs, timeout=60)
        assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
        # gw1 meanwhile: a submit fails UNAVAILABLE (retryable) once its store's retry budget is
        # spent, rather than hanging on database connections that get no answer.
        request = g.SubmitJobRequest(workflow_type="chaos-record", params={"seconds": c.ParamValue(string_value="0")})
        with pytest.raises(grpc.RpcError) as info:
            gw1.stub.SubmitJob(request, timeout=STORE_RETRY + 45)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
    events = {j: gw2.events(j) for j in jobs}
    # Healed: gw1 is back on the database (it serves new jobs) and does not go on with the old ones.
    probe = gw1.submit(log=log, seconds=0.2, steps=1).job_id
    assert gw1.wait_terminal([probe], timeout=60)[probe].status == c.JOB_STATUS_SUCCEEDED
    for job_id in jobs:
        for gateway in (gw1, gw2):
            assert gateway.events(job_id) == events[job_id]
        check_once(events[job_id])
        assert gw2.job(job_id).attempts == 1  # re-attached, not re-run
    assert all(runs(log)[j] == 1 for j in jobs)


def test_gateway_partitioned_from_the_registry_routes_on_its_last_view(bed, tmp_path):
    log = tmp_path / "runs.log"
    gw = bed.gateways["gw2"]
    with blocked(bed, "gw2", "registry"):
        jobs = [gw.submit(log=log, seconds=0.5, steps=2).job_id for _ in range(9)]
        done = gw.wait_terminal(jobs, timeout=60)
        assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
        assert {job.instance_id for job in done.values()} == {"w1", "w2", "w3"}
        assert healthy(gw, "chaos-record") == 3
    assert all(runs(log)[j] == 1 for j in jobs)
