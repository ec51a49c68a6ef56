"""Grants (sharing) in every job store (memory, SQLite, PostgreSQL): stored, found by id, listed per
tenant and per job, looked up by grantee (subject or group, never across tenants), deleted."""

from __future__ import annotations

from tests.store.conftest import run
from workmesh.services.core.auth import Grant, GrantStore, new_grant


def test_grants_round_trip_lookup_and_delete(backend):
    async def body():
        async with backend.open() as store:
            assert isinstance(store, GrantStore)
            job = new_grant("acme", "bob", job_id="j-1", created_by="alice")
            label = new_grant(
                "acme", "designers", group=True, level="manage", label="project=harbour-north", owner="alice"
            )
            other = new_grant("globex", "bob", job_id="j-2", created_by="carol")
            for grant in (job, label, other):
                await store.create_grant(grant)
            assert await store.find_grant(job.grant_id) == job
            assert await store.find_grant(label.grant_id) == label
            assert await store.find_grant("0" * 16) is None
            assert label.label_key == "project" and label.label_value == "harbour-north" and label.group
            assert (await store.find_grant(label.grant_id)).owner == "alice"

            assert {g.grant_id for g in await store.list_grants("acme")} == {job.grant_id, label.grant_id}
            assert {g.grant_id for g in await store.list_grants()} == {job.grant_id, label.grant_id, other.grant_id}
            assert [g.grant_id for g in await store.list_grants("acme", job_id="j-1")] == [job.grant_id]
            assert await store.list_grants("acme", job_id="j-2") == []

            # by grantee: the subject's own grants, its groups' grants, and nothing of another tenant
            assert [g.grant_id for g in await store.grants_to("acme", "bob")] == [job.grant_id]
            assert {g.grant_id for g in await store.grants_to("acme", "bob", ["designers", "x"])} == {
                job.grant_id,
                label.grant_id,
            }
            assert [g.grant_id for g in await store.grants_to("globex", "bob", ["designers"])] == [other.grant_id]
            # a subject named like a group is not the group (and the other way round)
            assert await store.grants_to("acme", "designers") == []
            assert await store.grants_to("acme", "nobody", ["bob"]) == []

            assert await store.delete_grant(job.grant_id) == job
            assert await store.delete_grant(job.grant_id) is None
            assert await store.find_grant(job.grant_id) is None
            assert [g.grant_id for g in await store.grants_to("acme", "bob", ["designers"])] == [label.grant_id]

    run(body())


def test_grants_survive_a_new_store_on_the_same_database(sql_backend):
    async def body():
        grant = new_grant("acme", "bob", job_id="j-9", level="manage", created_by="alice")
        async with sql_backend.open() as store:
            await store.create_grant(grant)
        async with sql_backend.open() as store:
            found = await store.find_grant(grant.grant_id)
            assert isinstance(found, Grant) and found == grant

    run(body())
