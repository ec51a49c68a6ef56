"""Tenant-wide label shares over gRPC (a real gateway server, authentication on): a holder of
jobs:manage shares every job of its tenant carrying a label value, whoever owns it; admin does so
in a tenant it names; the owner without jobs:manage, and jobs:manage for another tenant, are
refused naming the scope; bad combinations name the field; unshare takes it back at once."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc

from tests.auth.keys import hs256
from tests.auth.test_gateway_scoping import CALLERS, DENIED, MISSING, OK, USER, echo_request, scoped_mesh, status_of
from tests.gateway.mesh import value
from tests.support import run
from workmesh.services.core.auth import bearer_interceptors
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import gateway_pb2_grpc, sharing_pb2_grpc
from workmesh.v1 import sharing_pb2 as s
from workmesh.workers.examples.basic import echo, sleep

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MANAGER, OWNER = CALLERS["manager"], CALLERS["owner"]


async def share_ids(stub) -> set[str]:
    return {x.share_id for x in (await stub.ListShares(s.ListSharesRequest())).shares}


def test_jobs_manage_shares_a_label_of_every_owner_in_the_tenant():
    async def main():
        async with scoped_mesh(echo, sleep) as (mesh, callers):
            stubs = callers.stubs
            sharing = {n: sharing_pb2_grpc.SharingStub(ch) for n, ch in callers.channels.items()}
            erin_channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{mesh.port}", interceptors=bearer_interceptors(hs256(sub="erin", tenant="acme", scope=USER))
            )
            try:
                erin = gateway_pb2_grpc.GatewayStub(erin_channel)
                north = {
                    (await stubs["owner"].SubmitJob(echo_request(labels={"project": "north"}))).job.job_id,
                    (await erin.SubmitJob(echo_request(labels={"project": "north"}))).job.job_id,
                }
                south = (await stubs["owner"].SubmitJob(echo_request(labels={"project": "south"}))).job.job_id
                running = await stubs["owner"].SubmitJob(
                    g.SubmitJobRequest(
                        workflow_type="sleep", params={"seconds": value(300.0)}, labels={"project": "north"}
                    )
                )
                north.add(running.job.job_id)
                theirs = (await stubs["other_tenant"].SubmitJob(echo_request(labels={"project": "north"}))).job.job_id
                bob = stubs["same_tenant"]
                for job in north:
                    assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=job))))[0] == DENIED

                # The owner alone cannot share others' jobs; jobs:manage cannot reach another tenant.
                code, details = await status_of(
                    sharing["owner"].ShareJob(s.ShareJobRequest(label="project=north", grantee="bob", tenant_wide=True))
                )
                assert code == DENIED and "'jobs:manage'" in details, details
                code, details = await status_of(
                    sharing["manager"].ShareJob(
                        s.ShareJobRequest(label="project=north", grantee="bob", tenant_wide=True, tenant="globex")
                    )
                )
                assert code == DENIED and "'admin'" in details and details.startswith("tenant:"), details
                for request, field in [
                    (s.ShareJobRequest(job_id=south, grantee="bob", tenant_wide=True), "tenant_wide:"),
                    (s.ShareJobRequest(label="project=north", grantee="bob", tenant="acme"), "tenant:"),
                ]:
                    code, details = await status_of(sharing["manager"].ShareJob(request))
                    assert code == INVALID and details.startswith(field), details

                share = await sharing["manager"].ShareJob(
                    s.ShareJobRequest(label="project=north", grantee="bob", tenant_wide=True)
                )
                assert (share.tenant, share.label, share.owner, share.created_by, share.job_id) == (
                    "acme",
                    "project=north",
                    "",
                    "ops",
                    "",
                )
                again = await sharing["manager"].ShareJob(
                    s.ShareJobRequest(label="project=north", grantee="bob", tenant_wide=True)
                )
                assert again.share_id == share.share_id  # shared already: the same share
                for job in north:  # alice's and erin's alike
                    assert (await bob.GetJob(g.GetJobRequest(job_id=job))).job_id == job
                assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=south))))[0] == DENIED
                code, details = await status_of(bob.CancelJob(g.CancelJobRequest(job_id=running.job.job_id)))
                assert code == DENIED and "reading only" in details
                listed = {j.job_id for j in (await bob.ListJobs(g.ListJobsRequest(shared=True))).jobs}
                assert listed == north
                # A grant never crosses tenants: globex's job with the label stays invisible to bob.
                assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=theirs))))[0] == MISSING
                assert share.share_id in await share_ids(sharing["same_tenant"])
                assert share.share_id in await share_ids(sharing["owner"])  # it covers her jobs too
                assert share.share_id not in await share_ids(sharing["other_tenant"])
                entry = [e for e in await mesh.store.list_audit() if e.action == "share"][-1]
                assert entry.target == "label:project=north" and "every job of the tenant" in entry.detail
                assert entry.subject == "ops"

                await sharing["manager"].Unshare(s.UnshareRequest(share_id=share.share_id))
                for job in north:
                    assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=job))))[0] == DENIED

                # admin shares in the tenant it names, read + manage: bob may cancel alice's job now.
                wide = await sharing["admin"].ShareJob(
                    s.ShareJobRequest(
                        label="project=north", grantee="bob", tenant_wide=True, tenant="acme", manage=True
                    )
                )
                assert (wide.tenant, wide.owner, wide.manage, wide.created_by) == ("acme", "", True, "root")
                assert (await status_of(bob.CancelJob(g.CancelJobRequest(job_id=running.job.job_id))))[0] == OK
                assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=south))))[0] == DENIED
                # The tenant's operator sees and takes back the share admin gave in its tenant.
                assert wide.share_id in await share_ids(sharing["manager"])
                await sharing["manager"].Unshare(s.UnshareRequest(share_id=wide.share_id))
                assert (await status_of(bob.GetJob(g.GetJobRequest(job_id=running.job.job_id))))[0] == DENIED
            finally:
                await erin_channel.close()

    run(main())


async def _cli(mesh, *args: str, token: str) -> tuple[int, str, str]:
    """`workmesh ARGS --gateway ...` as a process (asyncio: the in-process gateway keeps serving)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workmesh.services.cli",
        *args,
        "--gateway",
        f"127.0.0.1:{mesh.port}",
        env={**os.environ, "WORKMESH_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_workmesh_share_tenant_wide():
    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            stubs = callers.stubs
            alices = (await stubs["owner"].SubmitJob(echo_request(labels={"project": "east"}))).job.job_id
            code, out, err = await _cli(
                mesh, "share", "--label", "project=east", "--tenant-wide", "--with", "bob", "--json", token=MANAGER
            )
            assert code == 0, err
            share = json.loads(out)
            assert share["tenant"] == "acme" and share["label"] == "project=east" and not share.get("owner")
            assert (await stubs["same_tenant"].GetJob(g.GetJobRequest(job_id=alices))).job_id == alices
            code, out, err = await _cli(mesh, "shares", "--json", token=MANAGER)
            assert code == 0 and share["share_id"] in {x["share_id"] for x in json.loads(out)}, err
            code, _, err = await _cli(
                mesh, "share", "--label", "project=east", "--tenant-wide", "--with", "bob", token=OWNER
            )
            assert code != 0 and "PERMISSION_DENIED" in err and "jobs:manage" in err, err
            args = ("share", "--label", "project=east", "--tenant", "globex", "--with", "bob")
            code, _, err = await _cli(mesh, *args, token=MANAGER)
            assert code != 0 and "--tenant goes with --tenant-wide" in err, err

    run(main())
