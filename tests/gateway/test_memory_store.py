"""MemoryJobStore: numbering, idempotency, updates, waiting without polling, listing and paging."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import run
from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway import MemoryJobStore
from workmesh.services.gateway.store import JobRecord, JobUpdate
from workmesh.v1 import common_pb2 as c


def record(job_id: str, wf: str = "echo", key: str | None = None) -> JobRecord:
    return JobRecord(job_id=job_id, workflow_type=wf, params={"x": c.ParamValue(int_value=1)}, idempotency_key=key)


def progress(fraction: float) -> c.JobEvent:
    return c.JobEvent(progress=c.Progress(fraction=fraction))


def test_create_stores_queued_job_with_first_event():
    async def main():
        store = MemoryJobStore()
        job, created = await store.create(record("a"))
        assert created and job.status == c.JOB_STATUS_QUEUED and job.last_seq == 1
        events = await store.events("a")
        assert [e.seq for e in events] == [1]
        assert events[0].status.status == c.JOB_STATUS_QUEUED
        assert (await store.get("a")).params["x"].int_value == 1
        assert await store.get("nope") is None

    run(main())


def test_idempotency_key_returns_the_earlier_job():
    async def main():
        store = MemoryJobStore()
        _, created1 = await store.create(record("a", key="k1"))
        again, created2 = await store.create(record("b", key="k1"))
        assert created1 and not created2 and again.job_id == "a"
        assert await store.get("b") is None
        other, created3 = await store.create(record("c", key="k2"))
        assert created3 and other.job_id == "c"

    run(main())


def test_append_numbers_events_per_job_and_applies_update():
    async def main():
        store = MemoryJobStore()
        await store.create(record("a"))
        await store.create(record("b"))
        out = await store.append("a", [progress(0.1), progress(0.2)], JobUpdate(progress=c.Progress(fraction=0.2)))
        assert [e.seq for e in out] == [2, 3]
        out_b = await store.append("b", [progress(0.5)])
        assert [e.seq for e in out_b] == [2]
        job = await store.get("a")
        assert job.last_seq == 3 and job.progress.fraction == pytest.approx(0.2)
        assert job.status == c.JOB_STATUS_QUEUED  # None fields are left alone
        assert [e.seq for e in await store.events("a", after_seq=1)] == [2, 3]
        assert [e.seq for e in await store.events("a", after_seq=1, limit=1)] == [2]
        assert all(e.HasField("time") for e in await store.events("a"))

    run(main())


def test_append_to_unknown_or_terminal_job_raises():
    async def main():
        store = MemoryJobStore()
        with pytest.raises(NotFound):
            await store.append("nope", [progress(0.1)])
        await store.create(record("a"))
        done = c.JobEvent(status=c.StatusChange(status=c.JOB_STATUS_SUCCEEDED))
        await store.append("a", [done], JobUpdate(status=c.JOB_STATUS_SUCCEEDED))
        assert (await store.get("a")).terminal
        with pytest.raises(FailedPrecondition):
            await store.append("a", [progress(0.1)])

    run(main())


def test_returned_records_are_snapshots():
    async def main():
        store = MemoryJobStore()
        job, _ = await store.create(record("a"))
        job.labels["x"] = "changed"
        job.status = c.JOB_STATUS_FAILED
        stored = await store.get("a")
        assert stored.labels == {} and stored.status == c.JOB_STATUS_QUEUED

    run(main())


def test_wait_returns_when_an_event_is_appended():
    async def main():
        store = MemoryJobStore()
        await store.create(record("a"))
        waiter = asyncio.create_task(store.wait("a", 1, timeout=30))
        await asyncio.sleep(0)
        assert not waiter.done()
        await store.append("a", [progress(0.5)])
        await asyncio.wait_for(waiter, 5)  # woken by the append, long before its 30 s timeout
        # Already past after_seq: returns at once.
        await asyncio.wait_for(store.wait("a", 1, timeout=30), 5)

    run(main())


def test_wait_times_out_and_returns_for_deleted_or_unknown_jobs():
    async def main():
        store = MemoryJobStore()
        await store.create(record("a"))
        await store.wait("a", 1, timeout=0.01)  # nothing happens: returns after the timeout
        await store.wait("unknown", 0, timeout=30)  # unknown: at once
        waiter = asyncio.create_task(store.wait("a", 1, timeout=30))
        await asyncio.sleep(0)
        assert await store.delete("a")
        await asyncio.wait_for(waiter, 5)
        assert not await store.delete("a")

    run(main())


def test_cancelled_waiter_leaves_no_trace():
    async def main():
        store = MemoryJobStore()
        await store.create(record("a"))
        waiter = asyncio.create_task(store.wait("a", 1, timeout=30))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await store.append("a", [progress(0.5)])  # no error from a cancelled future

    run(main())


def test_list_newest_first_with_filters_and_paging():
    async def main():
        store = MemoryJobStore()
        for i in range(7):
            await store.create(record(f"j{i}", wf="echo" if i % 2 == 0 else "sleep"))
        await store.append(
            "j4", [c.JobEvent(status=c.StatusChange(status=c.JOB_STATUS_FAILED))], JobUpdate(status=c.JOB_STATUS_FAILED)
        )
        assert [j.job_id for j in await store.list_jobs()] == [f"j{i}" for i in range(6, -1, -1)]
        assert [j.job_id for j in await store.list_jobs(workflow_type="echo")] == ["j6", "j4", "j2", "j0"]
        assert [j.job_id for j in await store.list_jobs(statuses=[c.JOB_STATUS_FAILED])] == ["j4"]
        page1 = await store.list_jobs(limit=3)
        page2 = await store.list_jobs(limit=3, after=page1[-1].job_id)
        page3 = await store.list_jobs(limit=3, after=page2[-1].job_id)
        assert [j.job_id for j in page1 + page2 + page3] == [f"j{i}" for i in range(6, -1, -1)]
        await store.delete("j5")
        assert [j.job_id for j in await store.list_jobs(limit=2)] == ["j6", "j4"]
        assert await store.events("j5") == []

    run(main())


def test_delete_frees_the_idempotency_key():
    async def main():
        store = MemoryJobStore()
        await store.create(record("a", key="k"))
        await store.delete("a")
        job, created = await store.create(record("b", key="k"))
        assert created and job.job_id == "b"

    run(main())
