"""API tokens: shown once, stored hashed, checked in constant time, revocable within the cache
time."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from tests.support import run
from workmesh.services.core.auth import ApiTokenVerifier, MemoryTokens, new_token
from workmesh.services.core.errors import InvalidArgument, Unauthenticated


def test_a_new_token_is_stored_hashed_and_verifies():
    async def main():
        store = MemoryTokens()
        plain, record = new_token("acme", "ci", ["jobs:submit", "jobs:read"], created_by="alice")
        await store.create_token(record)
        secret = plain[21:]
        assert secret not in repr(record) and record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        identity = await ApiTokenVerifier(store).verify(plain)
        assert (identity.tenant, identity.subject, identity.via) == ("acme", "token:ci", "token")
        assert identity.scopes == {"jobs:submit", "jobs:read"}

    run(main())


def test_wrong_secret_unknown_id_and_malformed_are_refused():
    async def main():
        store = MemoryTokens()
        plain, record = new_token("acme", "ci", ["jobs:read"])
        await store.create_token(record)
        verifier = ApiTokenVerifier(store)
        other = plain[:-4] + ("AAAA" if not plain.endswith("AAAA") else "BBBB")
        for token, reason in [
            (other, "unknown API token"),
            ("wmt_" + "0" * 16 + plain[20:], "unknown API token"),
            ("wmt_short", "malformed"),
        ]:
            with pytest.raises(Unauthenticated, match=reason) as info:
                await verifier.verify(token)
            assert token not in str(info.value)

    run(main())


def test_a_revoked_token_stops_working_within_the_cache_time():
    async def main():
        store = MemoryTokens()
        plain, record = new_token("acme", "ci", ["jobs:read"])
        await store.create_token(record)
        verifier = ApiTokenVerifier(store, cache_seconds=0.2)
        await verifier.verify(plain)
        await store.revoke_token(record.token_id, time.time())
        deadline = time.monotonic() + 2
        while True:
            try:
                await verifier.verify(plain)
            except Unauthenticated as exc:
                assert "revoked" in str(exc)
                break
            assert time.monotonic() < deadline, "still accepted after the cache time"
            await asyncio.sleep(0.02)

    run(main())


def test_bad_token_requests_are_invalid_arguments():
    for args, field in [
        (("", "ci", ["jobs:read"]), "tenant"),
        (("t", "bad name", ["jobs:read"]), "name"),
        (("t", "ci", ["jobs:everything"]), "scopes"),
        (("t", "ci", []), "scopes"),
    ]:
        with pytest.raises(InvalidArgument) as info:
            new_token(*args)
        assert info.value.field == field


def test_names_are_unique_among_a_tenants_live_tokens():
    async def main():
        store = MemoryTokens()
        _, first = new_token("acme", "ci", ["jobs:read"])
        await store.create_token(first)
        _, again = new_token("acme", "ci", ["jobs:read"])
        with pytest.raises(InvalidArgument, match="live token named 'ci'"):
            await store.create_token(again)
        _, elsewhere = new_token("globex", "ci", ["jobs:read"])
        await store.create_token(elsewhere)
        await store.revoke_token(first.token_id, time.time())
        await store.create_token(again)
        assert [r.token_id for r in await store.list_tokens("acme")] == [first.token_id, again.token_id]

    run(main())
