"""The JobStore contract for durable dispatch — on every adapter: a job created leased to the
replica that accepted it, its trace context, and the last worker event seq stored with events."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.gateway.store import JobUpdate
from workmesh.v1 import common_pb2 as pb

UTC = dt.UTC
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_create_with_a_lease_keeps_others_from_claiming(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            until = dt.datetime.now(UTC) + dt.timedelta(seconds=60)
            leased = (await one.create(new_job(lease_owner="g1", lease_until=until)))[0].job_id
            free = (await one.create(new_job()))[0].job_id
            assert [j.job_id for j in await two.claim("g2", 10, 60)] == [free]
            assert await two.renew("g1", [leased], 60) == {leased}  # g1 holds it from creation
            expired = await one.create(
                new_job(lease_owner="g1", lease_until=dt.datetime.now(UTC) - dt.timedelta(seconds=1))
            )
            assert [j.job_id for j in await two.claim("g2", 10, 60)] == [expired[0].job_id]

    run(body())


def test_trace_parent_and_worker_seq_are_stored(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job = (await store.create(new_job(trace_parent=TRACEPARENT, trace_id=TRACEPARENT[3:35])))[0]
            assert (job.trace_parent, job.worker_seq) == (TRACEPARENT, 0)
            await store.append(
                job.job_id, [status(pb.JOB_STATUS_RUNNING)], JobUpdate(status=pb.JOB_STATUS_RUNNING, worker_seq=1)
            )
            await store.append(job.job_id, [progress(0.5)], JobUpdate(worker_seq=3))
            await store.append(job.job_id, [progress(0.6)])  # no worker_seq: unchanged
            got = await store.get(job.job_id)
            assert (got.trace_parent, got.trace_id, got.worker_seq, got.last_seq) == (
                TRACEPARENT,
                TRACEPARENT[3:35],
                3,
                4,
            )
            # A new attempt starts from 0 again; a claimed job carries both fields.
            await store.append(
                job.job_id,
                [status(pb.JOB_STATUS_DISPATCHED)],
                JobUpdate(status=pb.JOB_STATUS_DISPATCHED, attempts=2, worker_seq=0),
            )
            claimed = await store.claim("g", 1, 60)
            assert [(j.job_id, j.worker_seq, j.trace_parent) for j in claimed] == [(job.job_id, 0, TRACEPARENT)]

    run(body())


def test_many_appends_fold_their_worker_seq_in_order(backend: Backend) -> None:
    async def body() -> None:
        import asyncio

        async with backend.open() as store:
            job_id = (await store.create(new_job()))[0].job_id
            # Concurrent appends share one group commit on SQL stores; the last one wins.
            await asyncio.gather(
                *(store.append(job_id, [progress(i / 100)], JobUpdate(worker_seq=i)) for i in range(1, 51))
            )
            assert (await store.get(job_id)).worker_seq == 50

    run(body())


@pytest.mark.parametrize("sync", ["NORMAL", "FULL"])  # writes on the event loop / on the writer thread
def test_exclusive_sqlite_store_owns_its_file_and_serves_what_it_wrote(tmp_path, sync) -> None:
    from workmesh.services.core.errors import FailedPrecondition
    from workmesh.services.gateway.store.sql._store import SqlJobStore

    url = f"sqlite:///{tmp_path}/jobs.db"

    async def body() -> None:
        owner = SqlJobStore(url, exclusive=True, sqlite_synchronous=sync)
        await owner.start()
        try:
            for other in (SqlJobStore(url), SqlJobStore(url, exclusive=True)):  # a second user: refused
                with pytest.raises(FailedPrecondition, match="one gateway"):
                    await other.start()
                await other.close()
            job_id = (await owner.create(new_job()))[0].job_id
            for i in range(1, 6):
                await owner.append(job_id, [progress(i / 10)], JobUpdate(worker_seq=i))
            await owner.append(job_id, [status(pb.JOB_STATUS_SUCCEEDED)], JobUpdate(status=pb.JOB_STATUS_SUCCEEDED))
            served = await owner.events(job_id, after_seq=2)
            assert await owner.peek(job_id) == (7, True)
            await owner.wait(job_id, 6, timeout=0.01)  # returns at once: 7 events exist
        finally:
            await owner.close()
        reader = SqlJobStore(url)  # the file is free again; what was served is what is stored
        try:
            stored = await reader.events(job_id, after_seq=2)
        finally:
            await reader.close()
        assert [(e.seq, e.SerializeToString()) for e in served] == [(e.seq, e.SerializeToString()) for e in stored]
        assert [e.seq for e in stored] == [3, 4, 5, 6, 7]

    run(body())


def test_peek_agrees_with_get(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            if not hasattr(store, "peek"):
                return
            assert await store.peek("nope") is None
            job_id = (await store.create(new_job()))[0].job_id
            assert await store.peek(job_id) == (1, False)
            await store.append(
                job_id, [progress(0.5), status(pb.JOB_STATUS_FAILED)], JobUpdate(status=pb.JOB_STATUS_FAILED)
            )
            got = await store.get(job_id)
            assert await store.peek(job_id) == (got.last_seq, got.terminal) == (3, True)

    run(body())
