"""Discovery, routing and drain with every service on an address of its own.

In each namespace 127.0.0.1 is that host's own loopback, so a service that registered or dialled
127.0.0.1 instead of its peer's address would fail here, not pass by accident as on one machine.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.chaos.support import check_once, runs
from tests.multihost.bed import GATEWAY_PORT, GATEWAYS, RESULTS_PORT, WORKER_PORT, WORKERS
from tests.support import eventually
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

pytestmark = pytest.mark.multihost


def test_every_service_registered_at_its_own_address_and_checked_there(bed):
    for wf in ("chaos-record", "series-async"):
        entries = bed.health(f"workmesh-wf-{wf}")
        by_instance = {e["Service"]["ID"].rsplit("-", 1)[-1]: e for e in entries}
        assert sorted(by_instance) == sorted(WORKERS)
        for name, entry in by_instance.items():
            assert (entry["Service"]["Address"], entry["Service"]["Port"]) == (bed.ip(name), WORKER_PORT)
            # The registry's GRPC check dials the advertised address from the registry's host.
            grpc_checks = [check for check in entry["Checks"] if check.get("Type", "grpc") == "grpc"]
            assert grpc_checks and all(check["Status"] == "passing" for check in grpc_checks), entry["Checks"]
    results = bed.health("workmesh-results")
    assert [(e["Service"]["Address"], e["Service"]["Port"]) for e in results] == [(bed.ip("results"), RESULTS_PORT)]
    assert all(check["Status"] == "passing" for e in results for check in e["Checks"])
    # gw1 listens on 0.0.0.0: what it registers is its WORKMESH_GATEWAY_ADVERTISE, checked there.
    entries = bed.health("workmesh-gateway")
    assert {(e["Service"]["Address"], e["Service"]["Port"]) for e in entries} == {
        (bed.ip(name), GATEWAY_PORT) for name in GATEWAYS
    }
    assert all(check["Status"] == "passing" for e in entries for check in e["Checks"]), entries
    for name in GATEWAYS:
        types = {
            t.type.name: t
            for t in bed.gateways[name].stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=10).types
        }
        assert types["chaos-record"].healthy_instances == len(WORKERS)


def test_routing_spreads_jobs_over_the_hosts(bed, tmp_path):
    log = tmp_path / "runs.log"
    gw = bed.gateways["gw1"]
    jobs = [gw.submit(log=log, seconds=3, steps=6).job_id for _ in range(6)]
    done = gw.wait_terminal(jobs, timeout=60)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    # Least-loaded routing: six jobs at once on three idle instances of capacity 4 → two each.
    assert Counter(job.instance_id for job in done.values()) == {name: 2 for name in WORKERS}
    assert all(count == 1 for count in runs(log).values())
    for job_id in jobs:
        check_once(gw.events(job_id))


def test_workers_find_the_results_service_at_its_address(bed):
    gw = bed.gateways["gw2"]
    job = gw.submit("series-async", steps=24).job_id
    done = gw.wait_terminal([job], timeout=60)[job]
    assert done.status == c.JOB_STATUS_SUCCEEDED, done.error
    refs = list(done.result.series)
    assert refs, done.result
    assert {ref.host.rpartition(":")[0] or ref.host for ref in refs} == {bed.ip("results")}, refs


def test_drain_finishes_running_jobs_and_routes_new_ones_elsewhere(bed, tmp_path):
    log = tmp_path / "runs.log"
    gw = bed.gateways["gw1"]
    # Fill w3 first: jobs go to the least-loaded instance, so submit until one runs on w3.
    jobs = [gw.submit(log=log, seconds=6, steps=12).job_id for _ in range(3)]
    running = {j: gw.wait_status(j, c.JOB_STATUS_RUNNING, timeout=30) for j in jobs}
    on_w3 = [j for j, job in running.items() if job.instance_id == "w3"]
    assert on_w3, {j: job.instance_id for j, job in running.items()}
    proc = bed.workers["w3"]
    proc.send_signal(15)  # SIGTERM by pid: the worker drains
    bed.wait_check("workmesh-wf-chaos-record", "w3", "absent", timeout=15)
    gw.wait_types("chaos-record", len(WORKERS) - 1, timeout=15)
    eventually(
        lambda: (
            {
                t.type.name: t.healthy_instances
                for t in gw.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=5).types
            }.get("chaos-record")
            == len(WORKERS) - 1
        ),
        timeout=15,
    )
    later = [gw.submit(log=log, seconds=0.5, steps=2).job_id for _ in range(4)]
    done = gw.wait_terminal(jobs + later, timeout=60)
    assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
    assert all(done[j].instance_id == "w3" and done[j].attempts == 1 for j in on_w3)  # finished, not moved
    assert all(done[j].instance_id != "w3" for j in later)
    assert proc.wait(30) == 0
    # Back to three instances for the next tests.
    bed.start_worker("w3")
    bed.wait_ready()
