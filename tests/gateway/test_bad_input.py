"""Every bad request gets the right status and a message naming the field and the rule."""

from __future__ import annotations

import grpc
import pytest

from tests.gateway.mesh import Mesh, value
from tests.support import run
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, sleep

Code = grpc.StatusCode


def submit(**kw) -> g.SubmitJobRequest:
    params = kw.pop("params", {})
    timeout = kw.pop("timeout", None)
    request = g.SubmitJobRequest(params={k: value(v) for k, v in params.items()}, **kw)
    if timeout is not None:
        request.timeout.seconds, request.timeout.nanos = timeout
    return request


# (method, request, expected code, words the message must contain)
CASES = [
    ("SubmitJob", submit(workflow_type=""), Code.INVALID_ARGUMENT, ["workflow_type", "empty"]),
    ("SubmitJob", submit(workflow_type="nope"), Code.NOT_FOUND, ["workflow_type", "nope", "echo", "sleep"]),
    ("SubmitJob", submit(workflow_type="sleep", timeout=(-1, 0)), Code.INVALID_ARGUMENT, ["timeout", "negative"]),
    ("SubmitJob", submit(workflow_type="sleep", params={"seconds": "soon"}), Code.INVALID_ARGUMENT, ["params.seconds"]),
    ("SubmitJob", submit(workflow_type="sleep", params={"seconds": -5.0}), Code.INVALID_ARGUMENT, ["params.seconds"]),
    ("SubmitJob", submit(workflow_type="sleep", params={"steps": 1.5}), Code.INVALID_ARGUMENT, ["params.steps"]),
    ("SubmitJob", submit(workflow_type="sleep", params={"colour": "red"}), Code.INVALID_ARGUMENT, ["params.colour"]),
    ("SubmitJob", submit(workflow_type="echo", idempotency_key="k" * 300), Code.INVALID_ARGUMENT, ["idempotency_key"]),
    ("GetJob", g.GetJobRequest(job_id=""), Code.INVALID_ARGUMENT, ["job_id", "empty"]),
    ("GetJob", g.GetJobRequest(job_id="no-such-job"), Code.NOT_FOUND, ["job_id", "no-such-job"]),
    ("CancelJob", g.CancelJobRequest(job_id="no-such-job"), Code.NOT_FOUND, ["job_id"]),
    ("DeleteJob", g.DeleteJobRequest(job_id="no-such-job"), Code.NOT_FOUND, ["job_id"]),
    ("DeleteJob", g.DeleteJobRequest(job_id=""), Code.INVALID_ARGUMENT, ["job_id"]),
    ("ListJobs", g.ListJobsRequest(page_size=-1), Code.INVALID_ARGUMENT, ["page_size", "between"]),
    ("ListJobs", g.ListJobsRequest(page_size=5000), Code.INVALID_ARGUMENT, ["page_size", "1000"]),
    ("ListJobs", g.ListJobsRequest(page_token="not-a-token"), Code.INVALID_ARGUMENT, ["page_token"]),
    ("ListJobs", g.ListJobsRequest(statuses=[42]), Code.INVALID_ARGUMENT, ["statuses"]),
    ("ListJobs", g.ListJobsRequest(labels=["project"]), Code.INVALID_ARGUMENT, ["labels[0]", "key=value"]),
    ("ListJobs", g.ListJobsRequest(labels=["a=1", "b c=2"]), Code.INVALID_ARGUMENT, ["labels[1]", "key 'b c'"]),
    ("ListJobs", g.ListJobsRequest(owner="u" * 201), Code.INVALID_ARGUMENT, ["owner", "200"]),
    ("ListJobs", g.ListJobsRequest(parent_id="p" * 65), Code.INVALID_ARGUMENT, ["parent_id", "64"]),
]


@pytest.fixture(scope="module")
def results():
    """Run every case against one gateway; (code, details) per case."""

    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo, sleep])
            await mesh.wait_instances("sleep", 1)
            out = []
            for method, request, _, _ in CASES:
                try:
                    await getattr(mesh.stub, method)(request)
                    out.append((Code.OK, ""))
                except grpc.aio.AioRpcError as exc:
                    out.append((exc.code(), exc.details()))
            for job_id, _code_word in (("", "empty"), ("no-such-job", "no-such-job")):
                try:
                    async for _ in mesh.stub.WatchJob(g.WatchJobRequest(job_id=job_id)):
                        pass
                    out.append((Code.OK, ""))
                except grpc.aio.AioRpcError as exc:
                    out.append((exc.code(), exc.details()))
            # The gateway still works after all of that.
            job = await mesh.submit("echo", message="still here")
            out.append(((await mesh.follow(job.job_id))[-2].result.outputs["message"], ""))
            return out

    return run(main())


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_request(results, index):
    _, _, code, words = CASES[index]
    got_code, details = results[index]
    assert got_code == code, details
    for word in words:
        assert word in details


def test_watch_job_bad_input(results):
    empty, unknown = results[len(CASES)], results[len(CASES) + 1]
    assert empty[0] == Code.INVALID_ARGUMENT and "job_id" in empty[1]
    assert unknown[0] == Code.NOT_FOUND and "job_id" in unknown[1] and "no-such-job" in unknown[1]


def test_gateway_keeps_serving(results):
    assert results[-1][0] == "still here"
