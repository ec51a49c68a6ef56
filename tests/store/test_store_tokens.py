"""API tokens in every job store (memory, SQLite, PostgreSQL): stored without their secret, found by
id, listed per tenant, revoked, names unique among a tenant's live tokens."""

from __future__ import annotations

import time

import pytest

from tests.store.conftest import run
from workmesh.services.core.auth import ApiTokenVerifier, new_token
from workmesh.services.core.errors import InvalidArgument, Unauthenticated


def test_tokens_round_trip_and_revoke(backend):
    async def body():
        async with backend.open() as store:
            plain, record = new_token("acme", "ci", ["jobs:submit", "jobs:read"], created_by="alice")
            await store.create_token(record)
            found = await store.find_token(record.token_id)
            assert found == record and found.revoked_at is None
            assert await store.find_token("0" * 16) is None
            verifier = ApiTokenVerifier(store, cache_seconds=0)
            assert (await verifier.verify(plain)).subject == "token:ci"
            with pytest.raises(InvalidArgument, match="live token named 'ci'"):
                await store.create_token(new_token("acme", "ci", ["jobs:read"])[1])
            _, other = new_token("globex", "ci", ["jobs:read"])
            await store.create_token(other)
            assert [t.token_id for t in await store.list_tokens("acme")] == [record.token_id]
            assert {t.token_id for t in await store.list_tokens()} == {record.token_id, other.token_id}
            revoked = await store.revoke_token(record.token_id, time.time())
            assert revoked.revoked_at is not None
            again = await store.revoke_token(record.token_id, time.time() + 10)
            assert again.revoked_at == revoked.revoked_at  # the first revocation stands
            assert await store.revoke_token("f" * 16, time.time()) is None
            with pytest.raises(Unauthenticated, match="revoked"):
                await verifier.verify(plain)
            _, renewed = new_token("acme", "ci", ["jobs:read"])
            await store.create_token(renewed)  # the name is free again once revoked
            assert len(await store.list_tokens("acme")) == 2

    run(body())
