"""The Gateway RPCs on jobs, streams included, walked in-process with: no token, a token of
another tenant, one of the same tenant without a grant, one without the scope, the job's owner,
one with the scope (jobs:manage) and admin — each asserting its status, on a fresh job per row.
Plus what ListJobs, SubmitJob's owner and idempotency keys, and GetQueue show to whom. (Every
RPC of every service: test_rpc_table.py.)"""

from __future__ import annotations

import contextlib

import grpc

from tests.auth.calls import stream_call
from tests.auth.keys import SECRET, hs256
from tests.gateway.mesh import Mesh, value
from tests.support import run
from workmesh.services.core.auth import AuthConfig, JwtConfig, bearer_interceptors
from workmesh.services.gateway.store import TERMINAL
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc
from workmesh.workers.examples.basic import echo, sleep

AUTH = AuthConfig(enabled=True, jwt=JwtConfig(secret=SECRET))
USER = "types:read jobs:submit jobs:read"
CALLERS = {
    "nobody": None,
    "owner": hs256(sub="alice", tenant="acme", scope=USER),
    "other_tenant": hs256(sub="carol", tenant="globex", scope=USER),
    "same_tenant": hs256(sub="bob", tenant="acme", scope=USER),
    "no_scope": hs256(sub="dave", tenant="acme", scope=""),
    "manager": hs256(sub="ops", tenant="acme", scope=USER + " jobs:manage"),
    "admin": hs256(sub="root", tenant="platform", scope="admin"),
}
OK, UNAUTH, DENIED, MISSING = (
    grpc.StatusCode.OK,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
)
# caller → expected status, for RPCs on alice's job and for RPCs that name no job.
ON_JOB = {
    "nobody": UNAUTH,
    "owner": OK,
    "other_tenant": MISSING,
    "same_tenant": DENIED,
    "no_scope": DENIED,
    "manager": OK,
    "admin": OK,
}
NO_JOB = {
    "nobody": UNAUTH,
    "owner": OK,
    "other_tenant": OK,
    "same_tenant": OK,
    "no_scope": DENIED,
    "manager": OK,
    "admin": OK,
}


def echo_request(**kw) -> g.SubmitJobRequest:
    return g.SubmitJobRequest(workflow_type="echo", params={"message": value("hi")}, **kw)


async def _drain(call) -> list:
    return [item async for item in call]


async def _run_jobs(stub) -> list:
    return await stream_call(stub.RunJobs(), g.RunJobsRequest(jobs=[g.RunJobsItem(ref="a", job=echo_request())]))


async def _first(call):
    async for item in call:
        call.cancel()
        return item


JOB_RPCS = {
    "GetJob": lambda stub, job: stub.GetJob(g.GetJobRequest(job_id=job)),
    "WatchJob": lambda stub, job: _drain(stub.WatchJob(g.WatchJobRequest(job_id=job))),
    "CancelJob": lambda stub, job: stub.CancelJob(g.CancelJobRequest(job_id=job)),
    "DeleteJob": lambda stub, job: stub.DeleteJob(g.DeleteJobRequest(job_id=job)),
    "RetryJob": lambda stub, job: stub.RetryJob(g.RetryJobRequest(job_id=job)),
}
OTHER_RPCS = {
    "ListWorkflowTypes": lambda stub: stub.ListWorkflowTypes(g.ListWorkflowTypesRequest()),
    "WatchWorkflowTypes": lambda stub: _first(stub.WatchWorkflowTypes(g.WatchWorkflowTypesRequest())),
    "SubmitJob": lambda stub: stub.SubmitJob(echo_request()),
    "ListJobs": lambda stub: stub.ListJobs(g.ListJobsRequest()),
    "RunJobs": _run_jobs,
    "EstimateJob": lambda stub: stub.EstimateJob(
        g.EstimateJobRequest(workflow_type="echo", params={"message": value("hi")})
    ),
    "GetQueue": lambda stub: stub.GetQueue(g.GetQueueRequest()),
}


async def status_of(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details()
    return OK, ""


class Callers:
    """One channel per caller, sending its token with every call."""

    def __init__(self, mesh: Mesh) -> None:
        self.channels = {
            name: grpc.aio.insecure_channel(f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(token))
            for name, token in CALLERS.items()
        }
        self.stubs = {name: gateway_pb2_grpc.GatewayStub(ch) for name, ch in self.channels.items()}

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


@contextlib.asynccontextmanager
async def scoped_mesh(*workflows, capacity: int = 64):
    """A mesh with authentication on, a worker serving `workflows`, and a channel per caller."""
    async with Mesh(auth=AUTH) as mesh:
        callers = Callers(mesh)
        mesh.stub = callers.stubs["admin"]
        try:
            if workflows:
                await mesh.add_worker(list(workflows), capacity=capacity)
                for workflow in workflows:  # each type is registered on its own: wait for all
                    await mesh.wait_instances(workflow.__workmesh_workflow__.name, 1)
            yield mesh, callers
        finally:
            await callers.close()


def test_every_rpc_with_every_kind_of_caller():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            alice = callers.stubs["owner"]
            failures = []
            for rpc, call in JOB_RPCS.items():
                for caller, expected in ON_JOB.items():
                    # A fresh job of alice's for each row: cancel and delete act on it.
                    request = (
                        echo_request()
                        if rpc not in ("CancelJob", "RetryJob")
                        else g.SubmitJobRequest(workflow_type="sleep", params={"seconds": value(300.0)})
                    )
                    job = (await alice.SubmitJob(request)).job.job_id
                    if rpc == "RetryJob":  # a cancelled job: one that may be retried
                        await alice.CancelJob(g.CancelJobRequest(job_id=job))
                    if rpc in ("WatchJob", "DeleteJob", "RetryJob"):
                        # Terminal: watch ends, delete is quick, retry runs it again.
                        await mesh.wait_status(job, *TERMINAL)
                    code, details = await status_of(call(callers.stubs[caller], job))
                    if code != expected:
                        failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {expected.name}")
                    if code == MISSING:
                        # Worded exactly as for a job that does not exist.
                        _, missing = await status_of(call(callers.stubs["owner"], "no-such-job"))
                        assert details == missing.replace("no-such-job", job)
                    if caller == "no_scope" and "jobs:" not in details:
                        failures.append(f"{rpc} by {caller}: {details!r} does not name the scope")
            for rpc, call in OTHER_RPCS.items():
                for caller, expected in NO_JOB.items():
                    code, details = await status_of(call(callers.stubs[caller]))
                    if code != expected:
                        failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {expected.name}")
            assert not failures, "\n".join(failures)

    run(main())


def test_jobs_belong_to_the_caller_and_listing_is_scoped():
    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            s = callers.stubs
            a = (await s["owner"].SubmitJob(echo_request())).job
            assert (a.tenant, a.user) == ("acme", "alice")
            b = (await s["same_tenant"].SubmitJob(echo_request())).job
            c = (await s["other_tenant"].SubmitJob(echo_request())).job

            async def ids(stub, **kw):
                return {j.job_id for j in (await stub.ListJobs(g.ListJobsRequest(**kw))).jobs}

            assert await ids(s["owner"]) == {a.job_id}
            assert await ids(s["same_tenant"]) == {b.job_id}
            assert await ids(s["other_tenant"]) == {c.job_id}
            assert await ids(s["manager"], tenant_wide=True) == {a.job_id, b.job_id}
            assert await ids(s["admin"], all_tenants=True) == {a.job_id, b.job_id, c.job_id}
            for stub, kw, scope in [
                (s["owner"], {"tenant_wide": True}, "jobs:manage"),
                (s["manager"], {"all_tenants": True}, "admin"),
            ]:
                code, details = await status_of(stub.ListJobs(g.ListJobsRequest(**kw)))
                assert code == DENIED and scope in details
            # A declared owner other than the caller's own is refused; nothing is stored.
            code, details = await status_of(s["owner"].SubmitJob(echo_request(tenant="globex")))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("tenant:")
            code, _ = await status_of(s["owner"].SubmitJob(echo_request(user="bob")))
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert await ids(s["owner"]) == {a.job_id}
            # Idempotency keys are per owner: the same key in another tenant is another job.
            first = await s["owner"].SubmitJob(echo_request(idempotency_key="k1"))
            again = await s["owner"].SubmitJob(echo_request(idempotency_key="k1"))
            theirs = await s["other_tenant"].SubmitJob(echo_request(idempotency_key="k1"))
            assert again.existing and again.job.job_id == first.job.job_id
            assert not theirs.existing and theirs.job.job_id != first.job.job_id
            # The queue view shows only the caller's tenant's owners.
            queue = await s["other_tenant"].GetQueue(g.GetQueueRequest())
            assert all(o.tenant == "globex" for o in queue.owners)
            assert all(o.tenant == "globex" for t in queue.types for o in t.owners)

    run(main())


def test_list_pages_through_many_jobs_of_others():
    from workmesh.services.gateway import _access

    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            s = callers.stubs
            mine = {(await s["owner"].SubmitJob(echo_request())).job.job_id}
            for _ in range(30):
                await s["other_tenant"].SubmitJob(echo_request())
            mine.add((await s["owner"].SubmitJob(echo_request())).job.job_id)
            seen, token, pages = set(), "", 0
            while True:
                reply = await s["owner"].ListJobs(g.ListJobsRequest(page_size=1, page_token=token))
                seen |= {j.job_id for j in reply.jobs}
                pages += 1
                token = reply.next_page_token
                if not token:
                    break
            assert seen == mine and pages <= 4

    old = _access.MAX_SCAN
    _access.MAX_SCAN = 10  # short scans: a page may come back empty with a token, never lose a job
    try:
        run(main())
    finally:
        _access.MAX_SCAN = old


def test_gateway_admin_needs_admin():
    from workmesh.v1 import admin_pb2, admin_pb2_grpc

    async def main():
        async with scoped_mesh() as (mesh, callers):
            for caller, expected in [("nobody", UNAUTH), ("owner", DENIED), ("manager", DENIED), ("admin", OK)]:
                stub = admin_pb2_grpc.GatewayAdminStub(callers.channels[caller])
                code, _ = await status_of(stub.CheckInvariants(admin_pb2.CheckInvariantsRequest()))
                assert code == expected, caller

    run(main())


def test_token_admin_is_scoped_to_the_tenant():
    from workmesh.v1 import admin_pb2, admin_pb2_grpc

    async def main():
        async with scoped_mesh() as (mesh, callers):
            admin = admin_pb2_grpc.TokenAdminStub(callers.channels["admin"])
            made = await admin.CreateToken(
                admin_pb2.CreateTokenRequest(tenant="acme", name="acme-admin", scopes=["tokens:admin", "jobs:read"])
            )
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(made.token))
            acme = admin_pb2_grpc.TokenAdminStub(channel)
            try:
                theirs = await admin.CreateToken(
                    admin_pb2.CreateTokenRequest(tenant="globex", name="ci", scopes=["jobs:read"])
                )
                mine = await acme.CreateToken(admin_pb2.CreateTokenRequest(name="ci", scopes=["jobs:read"]))
                assert mine.info.tenant == "acme" and mine.info.created_by == "token:acme-admin"
                listed = await acme.ListTokens(admin_pb2.ListTokensRequest())
                assert {t.name for t in listed.tokens} == {"acme-admin", "ci"}
                for call, expected in [
                    (acme.ListTokens(admin_pb2.ListTokensRequest(tenant="globex")), DENIED),
                    (acme.RevokeToken(admin_pb2.RevokeTokenRequest(token_id=theirs.info.token_id)), MISSING),
                    (acme.CreateToken(admin_pb2.CreateTokenRequest(name="x", scopes=["jobs:submit"])), DENIED),
                    (
                        acme.CreateToken(admin_pb2.CreateTokenRequest(name="y", scopes=["nope"])),
                        grpc.StatusCode.INVALID_ARGUMENT,
                    ),
                    (
                        admin_pb2_grpc.TokenAdminStub(callers.channels["owner"]).ListTokens(
                            admin_pb2.ListTokensRequest()
                        ),
                        DENIED,
                    ),
                    (
                        admin_pb2_grpc.TokenAdminStub(callers.channels["nobody"]).ListTokens(
                            admin_pb2.ListTokensRequest()
                        ),
                        UNAUTH,
                    ),
                ]:
                    code, details = await status_of(call)
                    assert code == expected, details
                revoked = await acme.RevokeToken(admin_pb2.RevokeTokenRequest(token_id=mine.info.token_id))
                assert revoked.HasField("revoked_at")
            finally:
                await channel.close()

    run(main())


def test_a_retried_job_stays_its_owners():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            alice = callers.stubs["owner"]
            for caller in ("owner", "manager"):
                request = g.SubmitJobRequest(workflow_type="sleep", params={"seconds": value(300.0)})
                job = (await alice.SubmitJob(request)).job.job_id
                await alice.CancelJob(g.CancelJobRequest(job_id=job))
                await mesh.wait_status(job, *TERMINAL)
                again = (await callers.stubs[caller].RetryJob(g.RetryJobRequest(job_id=job))).job
                assert again.job_id == job and (again.tenant, again.user) == ("acme", "alice")
                await alice.CancelJob(g.CancelJobRequest(job_id=job))

    run(main())
