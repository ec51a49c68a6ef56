"""Durability: stores reopened on the same database, and PostgreSQL restarted under a store.

Every acknowledged write (an append or create that returned) must be in the database
afterwards, exactly once, with its number.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.postgres import PostgresServer
from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.core.errors import Unavailable
from workmesh.services.gateway.store import JobUpdate
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as pb


def test_a_reopened_store_has_every_acknowledged_write(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as store:
            job, _ = await store.create(new_job(idempotency_key="k"))
            written = await store.append(job.job_id, [progress(i / 10) for i in range(10)])
            await store.append(job.job_id, [status(pb.JOB_STATUS_RUNNING)], JobUpdate(status=pb.JOB_STATUS_RUNNING))
            await store.claim("g", 1, 3600)
        async with sql_backend.open() as reopened:  # a gateway restart: migrations run again, no-op
            again = await reopened.get(job.job_id)
            assert again.status == pb.JOB_STATUS_RUNNING and again.last_seq == 12
            events = await reopened.events(job.job_id)
            assert [e.SerializeToString() for e in events[1:11]] == [e.SerializeToString() for e in written]
            assert (await reopened.create(new_job(idempotency_key="k")))[0].job_id == job.job_id
            assert await reopened.claim("other", 1, 60) == []  # the lease outlived the restart

    run(body())


@pytest.mark.postgres
def test_postgres_restart_between_appends(postgres_server: PostgresServer, postgres_url: str) -> None:
    async def body() -> None:
        async with SqlJobStore(postgres_url) as store, SqlJobStore(postgres_url) as peer:
            job, _ = await store.create(new_job())
            first = await store.append(job.job_id, [progress(0.1), progress(0.2)])
            await asyncio.to_thread(postgres_server.restart, "fast")
            second = await store.append(job.job_id, [progress(0.3)])  # on a new connection
            assert [e.seq for e in first + second] == [2, 3, 4]
            stored = await peer.events(job.job_id)
            assert [e.SerializeToString() for e in stored[1:]] == [e.SerializeToString() for e in first + second]
            assert (await store.claim("g", 1, 60))[0].job_id == job.job_id

    run(body())


async def _append_until(
    store: SqlJobStore, job_id: str, acknowledged: list[bytes], stop: asyncio.Event, at_least: int
) -> None:
    """Append one event at a time, remembering each acknowledged one, until `stop` and `at_least`."""
    while not stop.is_set() or len(acknowledged) < at_least:
        [event] = await store.append(job_id, [progress(len(acknowledged) / 1000)])
        assert event.seq == len(acknowledged) + 2  # seq 1 is the QUEUED event
        acknowledged.append(event.SerializeToString())
        await asyncio.sleep(0)


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_during_appends_loses_nothing_acknowledged(
    postgres_server: PostgresServer, postgres_url: str, mode: str
) -> None:
    """pg_ctl stop -m fast (clean) or -m immediate (crash + WAL recovery) while 8 writers append."""

    async def body() -> None:
        async with SqlJobStore(postgres_url, retry_for=60) as store, SqlJobStore(postgres_url, retry_for=60) as peer:
            jobs = [(await store.create(new_job()))[0].job_id for _ in range(8)]
            acknowledged: dict[str, list[bytes]] = {job: [] for job in jobs}
            stop = asyncio.Event()
            writers = [asyncio.create_task(_append_until(store, job, acknowledged[job], stop, 0)) for job in jobs]
            created_during: list[str] = []

            async def creator() -> None:
                while not stop.is_set():
                    created_during.append((await store.create(new_job()))[0].job_id)

            creating = asyncio.create_task(creator())
            await asyncio.sleep(0.2)  # let writes flow before the database goes away
            before = sum(map(len, acknowledged.values()))
            await asyncio.to_thread(postgres_server.stop, mode)
            await asyncio.to_thread(postgres_server.start)
            # Each writer must get through a few appends on the restarted server.
            targets = {job: len(acked) + 5 for job, acked in acknowledged.items()}
            await asyncio.gather(*(_wait_for_count(acknowledged[job], targets[job]) for job in jobs))
            stop.set()
            await asyncio.gather(*writers, creating)
            assert sum(map(len, acknowledged.values())) > before

            for job in jobs:
                stored = await peer.events(job, limit=100000)
                assert [e.seq for e in stored] == list(range(1, len(acknowledged[job]) + 2))
                assert [e.SerializeToString() for e in stored[1:]] == acknowledged[job]
                assert (await peer.get(job)).last_seq == len(acknowledged[job]) + 1
            for job in created_during:
                assert (await peer.get(job)) is not None
            # The listener reconnected: a watcher on the peer follows appends through `store`.
            waiter = asyncio.create_task(peer.wait(jobs[0], len(acknowledged[jobs[0]]) + 1, timeout=60))
            await asyncio.sleep(0.05)
            await store.append(jobs[0], [progress(1.0)])
            await asyncio.wait_for(waiter, 30)

    run(body(), timeout=110)


async def _wait_for_count(items: list, count: int) -> None:
    while len(items) < count:
        await asyncio.sleep(0.01)


@pytest.mark.postgres
def test_postgres_down_longer_than_retry_for_is_unavailable_then_recovers(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    async def body() -> None:
        async with SqlJobStore(postgres_url, retry_for=1.0) as store:
            job, _ = await store.create(new_job())
            await asyncio.to_thread(postgres_server.stop)
            try:
                with pytest.raises(Unavailable, match="job store unavailable"):
                    await store.append(job.job_id, [progress(0.5)])
                with pytest.raises(Unavailable):
                    await store.get(job.job_id)
            finally:
                await asyncio.to_thread(postgres_server.start)
            [event] = await store.append(job.job_id, [progress(0.6)])
            assert event.seq == 2  # the failed append left nothing behind
            assert [e.seq for e in await store.events(job.job_id)] == [1, 2]

    run(body())
