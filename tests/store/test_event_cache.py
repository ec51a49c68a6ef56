"""The SQLite gateway store's in-memory events (``sql._cache.EventCache``): what it serves is
what the database holds, byte for byte, and it keeps events serialized."""

from __future__ import annotations

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
