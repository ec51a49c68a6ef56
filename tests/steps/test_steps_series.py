"""A workflow's result lists its steps' series (issue 13), with real registry, gateway, results
and worker processes: each SeriesRef names the job that wrote it, and reads back by that job;
``workmesh job --json`` nests a step's own steps under it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import grpc
import pytest

from workmesh.services.clients import ResultsClient
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_a_parent_result_lists_the_series_of_its_steps_and_theirs(tmp_path):
    with DevMesh(workers=("tests.steps.series_flow:worker",), data_dir=tmp_path, log_dir=tmp_path) as mesh:  # noqa: SIM117
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            request = gateway_pb2.SubmitJobRequest(workflow_type="steps-series")
            job_id = stub.SubmitJob(request, timeout=10).job.job_id
            list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90))
            job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=10)
            assert job.status == common_pb2.JOB_STATUS_SUCCEEDED, job.error
            jobs = stub.ListJobs(gateway_pb2.ListJobsRequest(page_size=100), timeout=10).jobs
            by_step = {j.step_name: j for j in jobs if j.parent_id == job_id}
            mid_id = by_step["mid"].job_id
            deep = next(j for j in jobs if j.parent_id == mid_id)
            mid = stub.GetJob(gateway_pb2.GetJobRequest(job_id=mid_id), timeout=10)
        shown = subprocess.run(
            [sys.executable, "-m", "workmesh.services.cli", "job", job_id, "--json", "--gateway", mesh.gateway_address],
            capture_output=True,
            text=True,
            timeout=60,
        )
        parent_series = asyncio.run(_list(mesh, job_id))
        a_series = asyncio.run(_list(mesh, by_step["a"].job_id))

    # workmesh job --json: the step tree, a step's own steps nested under it
    # (a and b run in parallel and the tree lists steps in the order they started: either comes first)
    tree = json.loads(shown.stdout)["steps"]
    assert sorted((n["step"], n["job_id"], n["status"]) for n in tree[:2]) == [
        (name, by_step[name].job_id, "SUCCEEDED") for name in ("a", "b")
    ]
    assert (tree[2]["step"], tree[2]["job_id"], tree[2]["status"]) == ("mid", by_step["mid"].job_id, "SUCCEEDED")
    assert len(tree) == 3
    assert [(n["step"], n["job_id"], n["workflow_type"]) for n in tree[2]["steps"]] == [
        ("deep", deep.job_id, "steps-series-leaf")
    ]
    # the parent's own series first, then its steps' in the order asked for (a, b, mid's deep)
    listed = [(r.job_id, r.measurement, r.field, dict(r.tags)) for r in job.result.series]
    assert listed == [
        (job_id, "own", "T", {}),
        (by_step["a"].job_id, "leaf", "Q", {"variation": "a"}),
        (by_step["b"].job_id, "leaf", "Q", {"variation": "b"}),
        (deep.job_id, "leaf", "Q", {"variation": "deep"}),
    ]
    # a step with no series of its own lists those of its steps
    assert [(r.job_id, dict(r.tags)) for r in mid.result.series] == [(deep.job_id, {"variation": "deep"})]
    assert all(r.count == 6 and r.store == "parquet" for r in job.result.series)
    # ListSeries stays one job's: the parent's own series; a step's series are read by the ref's job_id
    assert [s.key.measurement for s in parent_series] == ["own"]
    assert [(s.key.measurement, dict(s.key.tags), s.count) for s in a_series] == [("leaf", {"variation": "a"}, 6)]


async def _list(mesh: DevMesh, job_id: str):
    async with ResultsClient(mesh.results_address) as client:
        return await client.list_series(job_id)
