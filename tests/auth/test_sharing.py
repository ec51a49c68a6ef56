"""Sharing over gRPC with authentication on (workmesh.v1.Sharing on a real gateway server): alice
shares a job and a label value; bob and a group member read them, cannot cancel without manage,
lose them on unshare; who may share, list and unshare; bad input names the field; the audit log
records share and unshare."""

from __future__ import annotations

import grpc

from tests.auth.keys import hs256
from tests.auth.test_gateway_scoping import DENIED, MISSING, OK, echo_request, scoped_mesh, status_of
from tests.gateway.mesh import value
from tests.support import run
from workmesh.services.core.auth import bearer_interceptors
from workmesh.services.gateway.store import TERMINAL
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc, sharing_pb2_grpc
from workmesh.v1 import sharing_pb2 as s
from workmesh.workers.examples.basic import echo, sleep

INVALID = grpc.StatusCode.INVALID_ARGUMENT
USER = "types:read jobs:submit jobs:read"


def _sleep(**labels) -> g.SubmitJobRequest:
    return g.SubmitJobRequest(workflow_type="sleep", params={"seconds": value(300.0)}, labels=labels)


def test_share_read_then_manage_then_unshare():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            stubs = callers.stubs
            sharing = {n: sharing_pb2_grpc.SharingStub(ch) for n, ch in callers.channels.items()}
            job = (await stubs["owner"].SubmitJob(_sleep())).job.job_id
            get = g.GetJobRequest(job_id=job)
            assert (await status_of(stubs["same_tenant"].GetJob(get)))[0] == DENIED

            read = await sharing["owner"].ShareJob(s.ShareJobRequest(job_id=job, grantee="bob"))
            assert (read.job_id, read.grantee, read.manage, read.owner, read.created_by) == (
                job,
                "bob",
                False,
                "alice",
                "alice",
            )
            again = await sharing["owner"].ShareJob(s.ShareJobRequest(job_id=job, grantee="bob"))
            assert again.share_id == read.share_id  # shared already: the same share
            assert (await stubs["same_tenant"].GetJob(get)).job_id == job
            watch = stubs["same_tenant"].WatchJob(g.WatchJobRequest(job_id=job))
            first = await watch.read()
            watch.cancel()
            assert first.seq >= 1
            listed = await stubs["same_tenant"].ListJobs(g.ListJobsRequest(shared=True))
            assert job in {j.job_id for j in listed.jobs}
            mine = await stubs["same_tenant"].ListJobs(g.ListJobsRequest())
            assert job not in {j.job_id for j in mine.jobs}  # the default stays one's own jobs
            code, details = await status_of(stubs["same_tenant"].CancelJob(g.CancelJobRequest(job_id=job)))
            assert code == DENIED and "reading only" in details
            # a grantee never shares on, and another tenant still sees nothing
            code, _ = await status_of(sharing["same_tenant"].ShareJob(s.ShareJobRequest(job_id=job, grantee="x")))
            assert code == DENIED
            assert (await status_of(stubs["other_tenant"].GetJob(get)))[0] == MISSING

            manage = await sharing["owner"].ShareJob(s.ShareJobRequest(job_id=job, grantee="bob", manage=True))
            assert manage.manage and manage.share_id != read.share_id
            seen = await sharing["same_tenant"].ListShares(s.ListSharesRequest())
            assert {x.share_id for x in seen.shares} == {read.share_id, manage.share_id}
            assert (await sharing["other_tenant"].ListShares(s.ListSharesRequest())).shares == []
            code, _ = await status_of(sharing["same_tenant"].Unshare(s.UnshareRequest(share_id=manage.share_id)))
            assert code == DENIED  # the grantee cannot take it back
            code, _ = await status_of(sharing["other_tenant"].Unshare(s.UnshareRequest(share_id=manage.share_id)))
            assert code == MISSING
            await sharing["owner"].Unshare(s.UnshareRequest(share_id=manage.share_id))
            assert (await status_of(stubs["same_tenant"].CancelJob(g.CancelJobRequest(job_id=job))))[0] == DENIED
            await sharing["owner"].ShareJob(s.ShareJobRequest(job_id=job, grantee="bob", manage=True))
            assert (await status_of(stubs["same_tenant"].CancelJob(g.CancelJobRequest(job_id=job))))[0] == OK

            for share in (await sharing["owner"].ListShares(s.ListSharesRequest(job_id=job))).shares:
                await sharing["owner"].Unshare(s.UnshareRequest(share_id=share.share_id))
            code, details = await status_of(stubs["same_tenant"].GetJob(get))
            assert code == DENIED and "its owner can share it" in details
            code, _ = await status_of(sharing["owner"].Unshare(s.UnshareRequest(share_id=read.share_id)))
            assert code == MISSING  # taken back already

            actions = [e for e in await mesh.store.list_audit() if e.action in ("share", "unshare")]
            assert [e.action for e in actions] == ["share", "share", "unshare", "share", "unshare", "unshare"]
            assert all(e.target == job and e.subject == "alice" and e.tenant == "acme" for e in actions)
            assert read.share_id in actions[0].detail and "read to 'bob'" in actions[0].detail

    run(main())


def test_label_share_to_a_group_covers_the_sharers_jobs_only():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            stubs = callers.stubs
            sharing = sharing_pb2_grpc.SharingStub(callers.channels["owner"])
            north = [(await stubs["owner"].SubmitJob(echo_request(labels={"project": "north"}))).job.job_id]
            north.append((await stubs["owner"].SubmitJob(echo_request(labels={"project": "north"}))).job.job_id)
            south = (await stubs["owner"].SubmitJob(echo_request(labels={"project": "south"}))).job.job_id
            bobs = (await stubs["same_tenant"].SubmitJob(echo_request(labels={"project": "north"}))).job.job_id
            share = await sharing.ShareJob(s.ShareJobRequest(label="project=north", grantee="designers", group=True))
            assert (share.label, share.group, share.owner, share.job_id) == ("project=north", True, "alice", "")
            dan = grpc.aio.insecure_channel(
                f"127.0.0.1:{mesh.port}",
                interceptors=bearer_interceptors(hs256(sub="dan", tenant="acme", scope=USER, groups=["designers"])),
            )
            try:
                stub = gateway_pb2_grpc.GatewayStub(dan)
                for job in north:
                    assert (await stub.GetJob(g.GetJobRequest(job_id=job))).job_id == job
                for job in (south, bobs):  # another label value; bob's job with alice's label
                    assert (await status_of(stub.GetJob(g.GetJobRequest(job_id=job))))[0] == DENIED
                listed = {j.job_id for j in (await stub.ListJobs(g.ListJobsRequest(shared=True))).jobs}
                assert listed == set(north)
            finally:
                await dan.close()
            entry = [e for e in await mesh.store.list_audit() if e.action == "share"][-1]
            assert entry.target == "label:project=north" and "group 'designers'" in entry.detail

    run(main())


def test_bad_shares_name_the_field_and_store_nothing():
    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            sharing = {n: sharing_pb2_grpc.SharingStub(ch) for n, ch in callers.channels.items()}
            job = (await callers.stubs["owner"].SubmitJob(echo_request())).job.job_id
            other = (await callers.stubs["other_tenant"].SubmitJob(echo_request())).job.job_id
            rows = [
                ("owner", s.ShareJobRequest(job_id="no-such-job", grantee="bob"), MISSING, "job_id: no job"),
                ("owner", s.ShareJobRequest(job_id=other, grantee="bob"), MISSING, "job_id: no job"),
                ("same_tenant", s.ShareJobRequest(job_id=job, grantee="erin"), DENIED, "job_id: only the owner"),
                ("no_scope", s.ShareJobRequest(job_id=job, grantee="bob"), DENIED, "jobs:submit"),
                ("nobody", s.ShareJobRequest(job_id=job, grantee="bob"), grpc.StatusCode.UNAUTHENTICATED, ""),
                ("owner", s.ShareJobRequest(label="project", grantee="bob"), INVALID, "label: must be key=value"),
                ("owner", s.ShareJobRequest(label="workmesh.user=bob", grantee="bob"), INVALID, "label: key"),
                ("owner", s.ShareJobRequest(label="a=b", job_id=job, grantee="bob"), INVALID, "job_id: "),
                ("owner", s.ShareJobRequest(grantee="bob"), INVALID, "job_id: "),
                ("owner", s.ShareJobRequest(job_id=job), INVALID, "grantee: "),
                ("owner", s.ShareJobRequest(job_id=job, grantee="alice"), INVALID, "grantee: "),
            ]
            failures = []
            for caller, request, expected, words in rows:
                code, details = await status_of(sharing[caller].ShareJob(request))
                if code != expected or words not in details:
                    failures.append(f"{caller} {request}: {code.name} {details!r}, expected {expected.name} {words!r}")
            code, details = await status_of(sharing["owner"].Unshare(s.UnshareRequest()))
            if code != INVALID or not details.startswith("share_id: "):
                failures.append(f"empty share_id: {code.name} {details!r}")
            assert not failures, "\n".join(failures)
            assert await mesh.store.list_grants() == []
            assert not [e for e in await mesh.store.list_audit() if e.action == "share"]

    run(main())


# The walk of tests/auth/test_gateway_scoping.py once more, with grants: every job RPC by a
# subject of the tenant holding a read share and by one holding a manage share; every Sharing
# RPC by every kind of caller.
GRANTED = {
    "reader": {"GetJob": OK, "WatchJob": OK, "CancelJob": DENIED, "DeleteJob": DENIED, "RetryJob": DENIED},
    "sharee_manager": {"GetJob": OK, "WatchJob": OK, "CancelJob": OK, "DeleteJob": OK, "RetryJob": OK},
}
SHARING_RPCS = {
    # caller -> status, for ShareJob of alice's job / ListShares / Unshare of a share of alice's
    "ShareJob": {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "owner": OK,
        "other_tenant": MISSING,
        "same_tenant": DENIED,
        "no_scope": DENIED,
        "manager": OK,
        "admin": OK,
    },
    "ListShares": {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "owner": OK,
        "other_tenant": OK,
        "same_tenant": OK,
        "no_scope": DENIED,
        "manager": OK,
        "admin": OK,
    },
    "Unshare": {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "owner": OK,
        "other_tenant": MISSING,
        "same_tenant": DENIED,
        "no_scope": DENIED,
        "manager": OK,
        "admin": OK,
    },
}


def test_every_job_rpc_with_a_grant_and_every_sharing_rpc_with_every_caller():
    from tests.auth.test_gateway_scoping import JOB_RPCS

    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            alice = callers.stubs["owner"]
            alice_sharing = sharing_pb2_grpc.SharingStub(callers.channels["owner"])
            granted = {
                name: grpc.aio.insecure_channel(
                    f"127.0.0.1:{mesh.port}",
                    interceptors=bearer_interceptors(hs256(sub=name, tenant="acme", scope=USER)),
                )
                for name in GRANTED
            }
            failures = []
            try:
                for rpc, call in JOB_RPCS.items():
                    for caller, expected in GRANTED.items():
                        sleeping = rpc in ("CancelJob", "RetryJob")
                        job = (await alice.SubmitJob(_sleep() if sleeping else echo_request())).job.job_id
                        await alice_sharing.ShareJob(
                            s.ShareJobRequest(job_id=job, grantee=caller, manage=caller == "sharee_manager")
                        )
                        if rpc == "RetryJob":
                            await alice.CancelJob(g.CancelJobRequest(job_id=job))
                        if rpc in ("WatchJob", "DeleteJob", "RetryJob"):
                            await mesh.wait_status(job, *TERMINAL)
                        stub = gateway_pb2_grpc.GatewayStub(granted[caller])
                        code, details = await status_of(call(stub, job))
                        if code != expected[rpc]:
                            failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {expected[rpc]}")
                for rpc, expected in SHARING_RPCS.items():
                    for caller, want in expected.items():
                        job = (await alice.SubmitJob(echo_request())).job.job_id
                        share = await alice_sharing.ShareJob(s.ShareJobRequest(job_id=job, grantee="zed"))
                        stub = sharing_pb2_grpc.SharingStub(callers.channels[caller])
                        if rpc == "ShareJob":
                            call = stub.ShareJob(s.ShareJobRequest(job_id=job, grantee="yan"))
                        elif rpc == "ListShares":
                            call = stub.ListShares(s.ListSharesRequest())
                        else:
                            call = stub.Unshare(s.UnshareRequest(share_id=share.share_id))
                        code, details = await status_of(call)
                        if code != want:
                            failures.append(f"{rpc} by {caller}: {code.name} ({details}), expected {want.name}")
            finally:
                for channel in granted.values():
                    await channel.close()
            assert not failures, "\n".join(failures)

    run(main())
