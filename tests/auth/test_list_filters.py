"""ListJobs' owner and label filters with authentication on (a real gateway server, bearer
tokens): a filter only narrows what the caller may see — another user's jobs show only when
shared with the caller, or with tenant_wide (jobs:manage) or all_tenants (admin)."""

from __future__ import annotations

from tests.auth.test_gateway_scoping import echo_request, scoped_mesh
from tests.support import run
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import sharing_pb2 as s
from workmesh.v1 import sharing_pb2_grpc
from workmesh.workers.examples.basic import echo


def test_filters_never_widen_what_the_caller_sees():
    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            st = callers.stubs

            async def submit(caller: str, project: str) -> str:
                return (await st[caller].SubmitJob(echo_request(labels={"project": project}))).job.job_id

            a1, a2 = await submit("owner", "north"), await submit("owner", "south")
            b1, b2 = await submit("same_tenant", "north"), await submit("same_tenant", "south")
            c1 = await submit("other_tenant", "north")

            async def ids(caller: str, **kw) -> list[str]:
                return [j.job_id for j in (await st[caller].ListJobs(g.ListJobsRequest(**kw))).jobs]

            # alice: her own jobs only, whatever she filters on
            assert await ids("owner", labels=["project=north"]) == [a1]
            assert await ids("owner", owner="bob") == []
            assert await ids("owner", owner="bob", shared=True) == []
            assert await ids("owner", owner="carol") == []
            assert await ids("owner", labels=["workmesh.tenant=globex"]) == []
            assert await ids("owner", owner="alice") == [a2, a1]
            # bob shares one job with alice: she sees that one, with `shared`
            sharing = sharing_pb2_grpc.SharingStub(callers.channels["same_tenant"])
            await sharing.ShareJob(s.ShareJobRequest(job_id=b1, grantee="alice"))
            assert await ids("owner", owner="bob") == []
            assert await ids("owner", owner="bob", shared=True) == [b1]
            assert await ids("owner", labels=["project=north"], shared=True) == [b1, a1]
            # jobs:manage: the tenant's jobs of one owner with tenant_wide, else its own only
            assert await ids("manager", owner="bob", tenant_wide=True) == [b2, b1]
            assert await ids("manager", owner="bob") == []
            assert await ids("manager", owner="carol", tenant_wide=True) == []
            # admin: every tenant's with all_tenants
            assert await ids("admin", owner="carol", all_tenants=True) == [c1]
            assert await ids("admin", labels=["project=north"], all_tenants=True) == [c1, b1, a1]

    run(main())


def test_the_callers_own_jobs_come_in_full_pages_among_many_of_others():
    """The store skips the jobs of others (the scope's owner labels go down to it): the caller's
    own jobs fill a page even when its scan limit is far below the jobs of others in between."""
    from workmesh.services.gateway import _access

    async def main():
        async with scoped_mesh(echo) as (mesh, callers):
            st = callers.stubs
            mine = [(await st["owner"].SubmitJob(echo_request())).job.job_id]
            for _ in range(150):  # more than one store read of the gateway's scan (100 for a page of 10)
                await st["same_tenant"].SubmitJob(echo_request())
            mine.insert(0, (await st["owner"].SubmitJob(echo_request())).job.job_id)
            reply = await st["owner"].ListJobs(g.ListJobsRequest(page_size=10))
            assert [j.job_id for j in reply.jobs] == mine and not reply.next_page_token
            # tenant_wide: the tenant goes down to the store, bob's jobs are the caller's to see
            reply = await st["manager"].ListJobs(g.ListJobsRequest(page_size=10, tenant_wide=True, owner="alice"))
            assert [j.job_id for j in reply.jobs] == mine and not reply.next_page_token

    old = _access.MAX_SCAN
    _access.MAX_SCAN = 10  # without the owner labels in the store query: an empty page and a token
    try:
        run(main())
    finally:
        _access.MAX_SCAN = old
