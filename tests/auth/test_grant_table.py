"""More "with a grant" rows of the table walk (test_gateway_scoping walks the other callers,
test_sharing a read and a manage share): every Gateway RPC on a job, streams included, by a
subject holding a grant through a group claim (read, manage), a label grant, a grant of another
job, the same subject name in another tenant, and a grantee without the scope — each asserting its
status. The grants are put straight into the job store (core.auth.Grant), one at a time."""

from __future__ import annotations

import time

import grpc

from tests.auth.keys import hs256
from tests.auth.test_gateway_scoping import (
    DENIED,
    JOB_RPCS,
    MISSING,
    OK,
    USER,
    echo_request,
    scoped_mesh,
    status_of,
)
from tests.gateway.mesh import value
from tests.support import run
from workmesh.services.core.auth import Grant, bearer_interceptors
from workmesh.services.core.auth._grants import MANAGE_LEVEL, READ_LEVEL
from workmesh.services.gateway.store import TERMINAL
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc
from workmesh.workers.examples.basic import echo, sleep

GRANTEES = {
    # caller → (token, grant on alice's job or None, status for reads, status for cancel/delete/retry)
    # (A read and a manage share made through the Sharing RPCs: tests/auth/test_sharing.py.)
    "group_manage_grant": (
        hs256(sub="erin", tenant="acme", scope=USER, groups=["ops"]),
        dict(grantee="ops", group=True, level=MANAGE_LEVEL),
        OK,
        OK,
    ),
    "group_grant": (
        hs256(sub="erin", tenant="acme", scope=USER, groups=["harbour"]),
        dict(grantee="harbour", group=True),
        OK,
        DENIED,
    ),
    "label_grant": (
        hs256(sub="bob", tenant="acme", scope=USER),
        dict(grantee="bob", label_key="project", label_value="harbour-north", job_id=""),
        OK,
        DENIED,
    ),
    "grant_of_another_job": (
        hs256(sub="bob", tenant="acme", scope=USER),
        dict(grantee="bob", job_id="another-job"),
        DENIED,
        DENIED,
    ),
    # The same subject name in another tenant: the job stays invisible.
    "other_tenant_same_name": (hs256(sub="bob", tenant="globex", scope=USER), dict(grantee="bob"), MISSING, MISSING),
    # A read grant needs the caller's jobs:read scope still.
    "read_grant_no_scope": (hs256(sub="bob", tenant="acme", scope=""), dict(grantee="bob"), DENIED, DENIED),
}
MANAGING = ("CancelJob", "DeleteJob", "RetryJob")


def test_every_job_rpc_with_every_kind_of_grant():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            alice = callers.stubs["owner"]
            failures = []
            n = 0
            for caller, (token, grant, reads, manages) in GRANTEES.items():
                async with grpc.aio.insecure_channel(
                    f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(token)
                ) as channel:
                    stub = gateway_pb2_grpc.GatewayStub(channel)
                    for rpc, call in JOB_RPCS.items():
                        labels = {"project": "harbour-north"}
                        request = (
                            echo_request(labels=labels)
                            if rpc not in ("CancelJob", "RetryJob")
                            else g.SubmitJobRequest(
                                workflow_type="sleep", params={"seconds": value(300.0)}, labels=labels
                            )
                        )
                        job = (await alice.SubmitJob(request)).job.job_id
                        if rpc == "RetryJob":
                            await alice.CancelJob(g.CancelJobRequest(job_id=job))
                        if rpc in ("WatchJob", "DeleteJob", "RetryJob"):
                            await mesh.wait_status(job, *TERMINAL)
                        n += 1
                        fields = {"job_id": job, "level": READ_LEVEL, **grant}
                        await mesh.store.create_grant(
                            Grant(
                                grant_id=f"{n:016x}",
                                tenant="acme",
                                created_by="alice",
                                created_at=time.time(),
                                **fields,
                            )
                        )
                        expected = manages if rpc in MANAGING else reads
                        code, details = await status_of(call(stub, job))
                        await mesh.store.delete_grant(f"{n:016x}")  # one grant at a time
                        if code != expected:
                            failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {expected.name}")
            assert not failures, "\n".join(failures)

    run(main())
