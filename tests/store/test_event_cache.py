"""The SQLite gateway store's in-memory events (``sql._cache.EventCache``): what it serves is
what the database holds, byte for byte, and it keeps events serialized."""

from __future__ import annotations

import asyncio

import pytest

from tests.store.conftest import run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.gateway.store import JobUpdate
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as pb


def test_cached_events_are_the_stored_ones_and_kept_serialized(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"

    async def body() -> None:
        store = SqlJobStore(url, retry_for=30.0, exclusive=True)
        await store.start()
        try:
            job, _ = await store.create(new_job())
            for start in range(0, 2400, 600):  # events past one read's limit of 1000
                await store.append(job.job_id, [progress((start + i) / 2400) for i in range(600)])
            await store.append(job.job_id, [status(pb.JOB_STATUS_SUCCEEDED)], JobUpdate(status=pb.JOB_STATUS_SUCCEEDED))
            assert store._cache is not None
            encoded = store._cache.encoded(job.job_id, 0, 10_000)
            assert encoded is not None and len(encoded) == 2402
            assert all(isinstance(data, bytes) for data in encoded)
            from_memory = [e for after in (0, 1000, 2000) for e in await store.events(job.job_id, after)]
            assert [e.seq for e in from_memory] == list(range(1, 2403))
            assert await store.peek(job.job_id) == (2402, True)
            assert [pb.JobEvent.FromString(data) for data in encoded] == from_memory
        finally:
            await store.close()
        reopened = SqlJobStore(url, retry_for=30.0, exclusive=True)  # a new process: nothing cached
        await reopened.start()
        try:
            assert reopened._cache is not None and reopened._cache.encoded(job.job_id, 0, 1) is None
            from_disk = [e for after in (0, 1000, 2000) for e in await reopened.events(job.job_id, after)]
            assert from_disk == from_memory
            assert await reopened.peek(job.job_id) == (2402, True)
        finally:
            await reopened.close()

    run(body())


@pytest.mark.postgres
def test_postgres_own_events_wake_from_the_writer_and_foreign_ones_from_the_notification(postgres_url) -> None:
    """A PostgreSQL store serving its own events from memory (``own_events``): the notification
    of its own write wakes nobody (its writer does, once the events are in memory); another
    replica's write to a cached job drops the job from memory and wakes its watchers, who then
    read that write from the database."""

    async def body() -> None:
        async with SqlJobStore(postgres_url, own_events=True) as store, SqlJobStore(postgres_url) as other:
            job, _ = await store.create(new_job())
            [own] = await store.append(job.job_id, [progress(0.1)])
            cache = store._cache
            assert cache is not None and cache.last_seq(job.job_id) == 2
            assert cache.foreign({job.job_id: own.seq}) == {}  # its own write: not woken again
            assert cache.foreign({"not-cached": 7}) == {"not-cached": 7}
            assert cache.last_seq(job.job_id) == 2

            watcher = asyncio.create_task(store.wait(job.job_id, 2, timeout=60.0))
            [theirs] = await other.append(job.job_id, [progress(0.2)])  # another replica
            await asyncio.wait_for(watcher, 30.0)  # woken by the notification, not the timeout
            assert cache.last_seq(job.job_id) is None and cache.dropped == 1
            assert [e.seq for e in await store.events(job.job_id)] == [1, 2, 3]
            assert (await store.events(job.job_id, 2))[0].progress.fraction == theirs.progress.fraction

    run(body())
