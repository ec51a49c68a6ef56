"""A job's owner record (what series reads are checked against with auth on), both stores: written
once, read back by another store object on the same data (another results replica)."""

from __future__ import annotations

import pytest

from tests.results.support import new_job
from tests.support import run
from workmesh.services.results.stores._owners import MemoryOwners, owners_of


@pytest.mark.parametrize(("tenant", "subject"), [("acme", "alice"), ("", ""), ('a "b" \\c, d=e', "ünï cödé sub")])
def test_an_owner_is_recorded_and_every_replica_reads_it(make_store, tenant, subject):
    async def scenario():
        job, other = new_job(), new_job()
        first, second = make_store(), make_store()
        try:
            owners = owners_of(first)
            assert not isinstance(owners, MemoryOwners)
            assert await owners.get(job) is None
            await owners.set(job, tenant, subject)
            assert await owners.get(job) == (tenant, subject)
            replica = owners_of(second)
            assert await replica.get(job) == (tenant, subject)
            assert await replica.get(other) is None
        finally:
            await first.close()
            await second.close()

    run(scenario())
