"""The audit log in every job store (memory, SQLite, PostgreSQL): entries appended alone or with the
job a submit creates (same transaction), numbered, filtered, kept when their job goes, and kept
across a restart of the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from tests.store.conftest import run
from tests.store.test_store_contract import new_job
from workmesh.services.core.errors import FailedPrecondition
from workmesh.services.gateway.store import AuditEntry, JobUpdate
from workmesh.v1 import common_pb2 as pb


def entry(action: str, target: str, **fields) -> AuditEntry:
    fields.setdefault("tenant", "acme")
    fields.setdefault("subject", "alice")
    fields.setdefault("peer", "ipv4:127.0.0.1:50000")
    fields.setdefault("at", time.time())
    return AuditEntry(action=action, target=target, **fields)


def test_audit_entries_are_appended_with_their_jobs_and_kept(backend):
    async def body():
        async with backend.open() as store:
            backend.needs(store, "record_audit", "list_audit")
            t0 = time.time()
            await store.record_audit(entry("token.create", "0123456789abcdef", detail="name=ci", at=t0 - 100))
            # Concurrent submits: the writer folds them into shared transactions, each job with its entry.
            jobs = [
                new_job(audit=entry("submit", f"job-{i}", subject=f"user{i}", tenant="acme" if i % 2 else "globex"))
                for i in range(20)
            ]
            for job in jobs:
                job.job_id = job.audit.target
            results = await asyncio.gather(*(store.create(job) for job in jobs))
            assert all(created for _, created in results)
            assert all(record.audit is None for record, _ in results)  # not carried by the stored job
            # A submit that finds an earlier job (idempotency key) or fails records nothing.
            keyed = new_job(idempotency_key="k1", audit=entry("submit", "keyed"))
            keyed.job_id = "keyed"
            await store.create(keyed)
            again = new_job(idempotency_key="k1", audit=entry("submit", "not-created"))
            assert (await store.create(again))[1] is False
            with pytest.raises(FailedPrecondition):
                await store.create(new_job(job_id="keyed", audit=entry("submit", "duplicate-id")))
            await store.record_audit(entry("cancel", "job-3", peer="ipv6:[::1]:4000"))

            entries = await store.list_audit()
            assert [e.action for e in entries] == ["token.create"] + ["submit"] * 21 + ["cancel"]
            assert [e.seq for e in entries] == sorted({e.seq for e in entries}) and entries[0].seq > 0
            assert {e.target for e in entries if e.action == "submit"} == {f"job-{i}" for i in range(20)} | {"keyed"}
            first = entries[0]
            assert (first.tenant, first.subject, first.peer, first.detail) == (
                "acme",
                "alice",
                "ipv4:127.0.0.1:50000",
                "name=ci",
            )
            assert first.at == pytest.approx(t0 - 100)
            assert entries[-1].peer == "ipv6:[::1]:4000"
            by_target = {e.target: e for e in entries}
            assert by_target["job-4"].subject == "user4" and by_target["job-4"].tenant == "globex"

            # Filters: time, tenant, paging by seq.
            assert [e.seq for e in await store.list_audit(since=t0 - 1)] == [e.seq for e in entries[1:]]
            globex = await store.list_audit(tenant="globex")
            assert {e.target for e in globex} == {f"job-{i}" for i in range(0, 20, 2)}
            page = await store.list_audit(limit=5)
            rest = await store.list_audit(after=page[-1].seq)
            assert [e.seq for e in page + rest] == [e.seq for e in entries]
            assert await store.list_audit(tenant="nobody") == []

            # Deleting a job, or the retention sweep, leaves its entries.
            assert await store.delete("job-3")
            cancelled = pb.JOB_STATUS_CANCELLED
            ended = JobUpdate(status=cancelled, finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            await store.append("job-5", [pb.JobEvent(status=pb.StatusChange(status=cancelled))], ended)
            await store.delete_finished_before(dt.datetime.now(dt.UTC))
            assert await store.get("job-5") is None
            assert [e.seq for e in await store.list_audit()] == [e.seq for e in entries]
            # Append-only: the store offers no way to change or remove an entry.
            assert sorted(m for m in dir(store) if "audit" in m and not m.startswith("_")) == [
                "list_audit",
                "record_audit",
            ]
        # Durable: a store opened afterwards on the same database has them all.
        async with backend.open() as store:
            assert [(e.seq, e.action, e.target) for e in await store.list_audit()] == [
                (e.seq, e.action, e.target) for e in entries
            ]

    run(body())
