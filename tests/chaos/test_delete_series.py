"""DeleteJob also deletes the job's series in the registered results service; when a registered
results service cannot be reached, DeleteJob answers UNAVAILABLE and keeps the job (retry later)."""

from __future__ import annotations

import signal

import grpc
import numpy as np
import pytest

from tests.support import eventually, free_port, run, wait_for_port
from workmesh.registry import RegistryConfig, find_service
from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import NotFound
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g


def test_delete_removes_series_or_answers_unavailable(cluster, procs, tmp_path):
    port = free_port()
    results = procs.workmesh(
        "results",
        "--listen",
        f"127.0.0.1:{port}",
        name="results",
        env={"CONSUL_HTTP_ADDR": cluster.registry, "WORKMESH_DATA_DIR": str(tmp_path / "results")},
    )
    wait_for_port(port, timeout=30)
    registry = RegistryConfig(address=cluster.registry)
    eventually(lambda: run(find_service(registry, "workmesh-results")), timeout=30)
    gw = cluster.gateway()
    cluster.worker(capacity=2)
    gw.wait_types("chaos-record", 1)
    jobs = [gw.submit(seconds=0.1, steps=1).job_id for _ in range(2)]
    gw.wait_terminal(jobs)

    async def write_series(job_id):
        async with ResultsClient(f"127.0.0.1:{port}") as client:
            await client.write(job_id, "heat", np.arange(10, dtype="int64"), values=np.ones(10))
            return len(await client.list_series(job_id))

    async def series_of(job_id):
        async with ResultsClient(f"127.0.0.1:{port}") as client:
            try:
                return len(await client.list_series(job_id))
            except NotFound:  # the results service's answer for a job without series
                return 0

    assert run(write_series(jobs[0])) == 1
    gw.stub.DeleteJob(g.DeleteJobRequest(job_id=jobs[0]), timeout=30)
    assert run(series_of(jobs[0])) == 0
    with pytest.raises(grpc.RpcError) as info:
        gw.job(jobs[0])
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    # Freeze the results process: still registered, but it answers nothing.
    results.send_signal(signal.SIGSTOP)  # by pid; SIGCONT below, and procs stops it at the end
    try:
        with pytest.raises(grpc.RpcError) as info:
            gw.stub.DeleteJob(g.DeleteJobRequest(job_id=jobs[1]), timeout=60)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert gw.job(jobs[1]).status == c.JOB_STATUS_SUCCEEDED  # kept: the delete can be retried
    finally:
        results.send_signal(signal.SIGCONT)
