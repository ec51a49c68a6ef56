"""ListJobs' owner, label and parent_id filters through a real gateway server (authentication
off, the SQLite job store the gateway opens by default) with real workers: the steps of a
workflow listed by their parent, pages that keep the filter, and bad filters refused with
INVALID_ARGUMENT naming the field and the rule."""

from __future__ import annotations

import grpc
import pytest

from tests.gateway.mesh import Mesh, value
from tests.steps.pipeline import pipeline
from tests.support import run
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo

pytestmark = pytest.mark.timeout(120)


def _echo(user: str, **labels: str) -> g.SubmitJobRequest:
    return g.SubmitJobRequest(workflow_type="echo", params={"message": value("hi")}, user=user, labels=labels)


async def _ids(stub, **kw) -> list[str]:
    return [j.job_id for j in (await stub.ListJobs(g.ListJobsRequest(**kw))).jobs]


def test_owner_label_and_parent_filters(tmp_path):
    async def main():
        store = SqlJobStore(f"sqlite:///{tmp_path}/jobs.db", exclusive=True)
        async with Mesh(store=store) as mesh:
            await mesh.add_worker([pipeline, echo], capacity=8)
            await mesh.wait_instances("pipeline", 1)
            await mesh.wait_instances("echo", 1)  # each type registers on its own; both are submitted
            stub = mesh.stub
            made = []
            for i in range(6):
                request = _echo("ana" if i % 2 == 0 else "bob", project="x" if i < 3 else "y")
                made.append((await stub.SubmitJob(request)).job.job_id)
            parent = (await stub.SubmitJob(g.SubmitJobRequest(workflow_type="pipeline", user="ana"))).job.job_id
            assert (await mesh.wait_status(parent, c.JOB_STATUS_SUCCEEDED)).status == c.JOB_STATUS_SUCCEEDED

            everything = (await stub.ListJobs(g.ListJobsRequest(page_size=100))).jobs
            steps = [j for j in everything if j.parent_id == parent]
            assert {j.step_name for j in steps} >= {"one", "two"}
            assert await _ids(stub, parent_id=parent) == [j.job_id for j in steps]
            assert await _ids(stub, parent_id="no-such-job") == []

            bobs = [made[5], made[3], made[1]]
            assert await _ids(stub, owner="bob") == bobs
            assert await _ids(stub, labels=["project=x"]) == [made[2], made[1], made[0]]
            assert await _ids(stub, labels=["project=y", "workmesh.user=ana"]) == [made[4]]
            assert await _ids(stub, owner="bob", labels=["project=y"], workflow_type="echo") == [made[5], made[3]]
            assert await _ids(stub, owner="ana", statuses=[c.JOB_STATUS_FAILED]) == [
                j.job_id for j in everything if j.user == "ana" and j.status == c.JOB_STATUS_FAILED
            ]
            seen, token = [], ""
            while True:
                reply = await stub.ListJobs(g.ListJobsRequest(owner="bob", page_size=1, page_token=token))
                seen += [j.job_id for j in reply.jobs]
                assert all(j.user == "bob" for j in reply.jobs)
                if not (token := reply.next_page_token):
                    break
            assert seen == bobs

    run(main())


BAD = [
    ({"labels": ["project"]}, "labels[0]: must be key=value"),
    ({"labels": ["a=1", '"x=1']}, "labels[1]: key"),
    ({"labels": ["=1"]}, "labels[0]: key"),
    ({"labels": ["a=" + "v" * 1025]}, "labels[0]: value must be at most 1024"),
    ({"labels": ["a=1", "a=2"]}, "labels[1]: key 'a' is already selected"),
    ({"labels": [f"k{i}=v" for i in range(17)]}, "labels: at most 16"),
    ({"owner": "u" * 201}, "owner: must be at most 200"),
    ({"owner": "ana", "labels": ["workmesh.user=bob"]}, "owner: contradicts"),
    ({"parent_id": "p" * 65}, "parent_id: must be at most 64"),
]


@pytest.mark.parametrize(("fields", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_filters_name_the_field_and_the_rule(fields, message):
    async def main():
        async with Mesh() as mesh:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await mesh.stub.ListJobs(g.ListJobsRequest(**fields))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details().startswith(message), caught.value.details()

    run(main())
