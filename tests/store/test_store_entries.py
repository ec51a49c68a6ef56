"""``entries``: a store's events as the progress fan-out sends them (seq, kind, serialized bytes),
on every adapter - the same events as ``events``, byte for byte, with the right kinds; from the
SQLite gateway store's cache the bytes it keeps, and the same again once nothing is cached."""

from __future__ import annotations

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.gateway.store import JobUpdate
from workmesh.services.gateway.store._entries import OTHER, PROGRESS, STATUS, TERMINAL_STATUS, entry_of
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as pb

SUCCEEDED = pb.JOB_STATUS_SUCCEEDED


async def _fill(store) -> str:
    job, _ = await store.create(new_job())
    await store.append(job.job_id, [status(pb.JOB_STATUS_RUNNING)], JobUpdate(status=pb.JOB_STATUS_RUNNING))
    await store.append(job.job_id, [progress(i / 5) for i in range(5)])
    await store.append(job.job_id, [pb.JobEvent(log=pb.LogLine(message="hello"))])
    await store.append(job.job_id, [status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
    return job.job_id


def test_entries_are_the_stored_events_serialized_with_their_kinds(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job_id = await _fill(store)
            entries = await store.entries(job_id)
            events = await store.events(job_id)
            assert entries == [entry_of(event) for event in events]
            assert [e.seq for e in entries] == list(range(1, 10))
            assert [e.kind for e in entries] == [STATUS, STATUS, *[PROGRESS] * 5, OTHER, TERMINAL_STATUS]
            assert [pb.JobEvent.FromString(e.data) for e in entries] == events
            assert [e.seq for e in await store.entries(job_id, 2, 3)] == [3, 4, 5]
            assert await store.entries(job_id, 9) == []
            assert await store.entries("no-such-job") == []

    run(body())


def test_the_sqlite_gateway_store_serves_entries_from_its_cache_and_the_same_from_disk(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"

    async def body() -> None:
        store = SqlJobStore(url, retry_for=30.0, exclusive=True)
        await store.start()
        try:
            job_id = await _fill(store)
            assert store._cache is not None
            cached = store._cache.entries(job_id, 0, 1000)
            assert cached is not None and cached == await store.entries(job_id)
        finally:
            await store.close()
        reopened = SqlJobStore(url, retry_for=30.0, exclusive=True)  # a new process: nothing cached
        await reopened.start()
        try:
            assert reopened._cache is not None and reopened._cache.entries(job_id, 0, 1000) is None
            assert await reopened.entries(job_id) == cached
        finally:
            await reopened.close()

    run(body())
