"""50 ms of latency on one worker host (``tc netem``): routing still goes by load, nothing times out."""

from __future__ import annotations

import time
from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.chaos.support import check_once, runs
from tests.multihost.bed import WORKER_PORT, WORKERS
from workmesh.v1 import common_pb2 as c

pytestmark = pytest.mark.multihost


def round_trip(address: str) -> float:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        stub.Check(health_pb2.HealthCheckRequest(), timeout=10)  # connected
        began = time.monotonic()
        stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return time.monotonic() - began


def test_latency_on_one_worker_host(bed, tmp_path):
    problem = bed.net.netem_problem("w3")
    if problem:
        pytest.skip(problem)
    log = tmp_path / "runs.log"
    gw = bed.gateways["gw1"]
    bed.net.delay("w3", 50)
    try:
        # The fault is in place (a precondition, not a speed claim): a round trip to w3 now
        # includes its 50 ms of delay.
        assert round_trip(f"{bed.ip('w3')}:{WORKER_PORT}") >= 0.05
        # w1 is busy with two long jobs; the next jobs go to the less-loaded instances,
        # the slow one included, as load says.
        busy = [gw.submit(log=log, seconds=8, steps=16).job_id for _ in range(2)]
        placed = {j: gw.wait_status(j, c.JOB_STATUS_RUNNING, timeout=30).instance_id for j in busy}
        first = set(placed.values())
        jobs = [gw.submit(log=log, seconds=2, steps=20, timeout=60).job_id for _ in range(4)]
        done = gw.wait_terminal(busy + jobs, timeout=90)
        assert {job.status for job in done.values()} == {c.JOB_STATUS_SUCCEEDED}
        assert all(job.attempts == 1 for job in done.values())
        # Least-loaded: 2 busy instances hold one long job each; the 4 short jobs fill the
        # idle one to 2 and then spread, so every instance ends with 2 jobs, w3 too.
        assert Counter(job.instance_id for job in done.values()) == {name: 2 for name in WORKERS}, (
            first,
            {j: done[j].instance_id for j in jobs},
        )
        assert bed.check_status("workmesh-wf-chaos-record", "w3") == "passing"
        assert all(count == 1 for count in runs(log).values())
        for job_id in jobs:
            check_once(gw.events(job_id))
    finally:
        bed.net.undelay("w3")
