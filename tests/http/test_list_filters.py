"""GET /v1/jobs filtered by owner, labels and parent_id against a live dev mesh: the same jobs
as gRPC ListJobs with the same filters, pages that keep the filter."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest

from tests.support import eventually
from workmesh.v1 import gateway_pb2 as g

pytestmark = pytest.mark.e2e


def _submit(http, user: str, **labels: str) -> str:
    body = {"workflowType": "echo", "params": {"message": {"stringValue": "hi"}}, "user": user, "labels": labels}
    reply = http.post("/v1/jobs", body)
    assert reply.status == 200, reply.body
    return reply.json()["job"]["jobId"]


def _ids(http, **query) -> list[str]:
    reply = http.get("/v1/jobs?" + urllib.parse.urlencode(query, doseq=True))
    assert reply.status == 200, reply.body
    return [j["jobId"] for j in reply.json()["jobs"]]


def test_owner_and_label_filters_match_grpc(http, stub):
    run = uuid.uuid4().hex[:8]  # the mesh is shared by the module's tests: own users and labels
    ana, bob = f"ana-{run}", f"bob-{run}"
    made = [_submit(http, ana if i % 2 == 0 else bob, run=run, project="x" if i < 2 else "y") for i in range(4)]
    assert _ids(http, owner=bob) == [made[3], made[1]]
    assert _ids(http, labels=f"run={run}") == made[::-1]
    assert _ids(http, labels=[f"run={run}", "project=y"]) == [made[3], made[2]]
    assert _ids(http, owner=ana, labels=["project=x"]) == [made[0]]
    for query in ({"owner": bob}, {"labels": [f"run={run}", "project=y"]}):
        grpc_ids = [j.job_id for j in stub.ListJobs(g.ListJobsRequest(**query), timeout=10).jobs]
        assert _ids(http, **query) == grpc_ids
    seen, token = [], ""
    while True:
        query = {"labels": f"run={run}", "page_size": 1, **({"page_token": token} if token else {})}
        reply = http.get("/v1/jobs?" + urllib.parse.urlencode(query)).json()
        seen += [j["jobId"] for j in reply["jobs"]]
        if not (token := reply.get("nextPageToken", "")):
            break
    assert seen == made[::-1]


def test_the_steps_of_a_workflow_by_parent_id(http, stub):
    reply = http.post("/v1/jobs", {"workflowType": "district-design", "params": {"buildings": {"intValue": "3"}}})
    assert reply.status == 200, reply.body
    parent = reply.json()["job"]["jobId"]
    eventually(lambda: http.get(f"/v1/jobs/{parent}").json()["status"] == "JOB_STATUS_SUCCEEDED", timeout=60)
    steps = http.get("/v1/jobs?" + urllib.parse.urlencode({"parent_id": parent})).json()["jobs"]
    assert steps and all(j["parentId"] == parent for j in steps)
    every = http.get("/v1/jobs?page_size=1000").json()["jobs"]
    assert [j["jobId"] for j in steps] == [j["jobId"] for j in every if j.get("parentId") == parent]
    assert [j.job_id for j in stub.ListJobs(g.ListJobsRequest(parent_id=parent)).jobs] == [j["jobId"] for j in steps]


def test_bad_filters_are_400_naming_the_field(http):
    reply = http.get("/v1/jobs?labels=project")
    assert reply.status == 400 and reply.json()["message"].startswith("labels[0]: must be key=value"), reply.body
    reply = http.get("/v1/jobs?owner=" + "u" * 201)
    assert reply.status == 400 and reply.json()["message"].startswith("owner: must be at most 200"), reply.body
