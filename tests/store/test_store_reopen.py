"""JobStore.reopen (RetryJob: a new attempt of an ended job) on every adapter."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway.store import JobUpdate, Reopen
from workmesh.v1 import common_pb2 as pb

UTC = dt.UTC


def reopen_fields(owner: str = "replica-1", **labels: str) -> Reopen:
    return Reopen(
        max_attempts=6,
        labels={"team": "heat", **labels},
        lease_owner=owner,
        lease_until=dt.datetime.now(UTC) + dt.timedelta(seconds=30),
    )


def queued_again() -> pb.JobEvent:
    return status(pb.JOB_STATUS_QUEUED, "RETRIED: attempt 2")


async def failed_job(store, final: int = pb.JOB_STATUS_FAILED) -> str:
    job, _ = await store.create(new_job(labels={"team": "heat"}))
    error = pb.JobError(code="HANDLER_ERROR", message="boom")
    await store.append(
        job.job_id,
        [status(pb.JOB_STATUS_RUNNING), progress(0.5)],
        JobUpdate(status=pb.JOB_STATUS_RUNNING, attempts=1, progress=pb.Progress(fraction=0.5)),
    )
    update = JobUpdate(status=final, finished_at=dt.datetime.now(UTC))
    if final == pb.JOB_STATUS_SUCCEEDED:
        update.result = pb.JobResult(data=b"ok")
    else:
        update.error = error
    await store.append(job.job_id, [status(final)], update)
    return job.job_id


def test_reopen_makes_an_ended_job_queued_and_numbers_on(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job_id = await failed_job(store)
            reopened = await store.reopen(job_id, queued_again(), reopen_fields(retry="k1"))
            assert reopened.status == pb.JOB_STATUS_QUEUED and reopened.last_seq == 5
            for got in (reopened, await store.get(job_id)):
                assert got.status == pb.JOB_STATUS_QUEUED
                assert (got.error, got.result, got.progress, got.finished_at) == (None, None, None, None)
                assert (got.attempts, got.max_attempts, got.last_seq) == (1, 6, 5)
                assert got.labels == {"team": "heat", "retry": "k1"}
            events = await store.events(job_id)
            assert [e.seq for e in events] == [1, 2, 3, 4, 5]
            assert events[-1].status == pb.StatusChange(status=pb.JOB_STATUS_QUEUED, reason="RETRIED: attempt 2")
            assert events[-1].HasField("time")
            # It runs again: appends are accepted until it ends again.
            await store.append(job_id, [status(pb.JOB_STATUS_SUCCEEDED)], JobUpdate(status=pb.JOB_STATUS_SUCCEEDED))
            assert (await store.get(job_id)).last_seq == 6

    run(body())


@pytest.mark.parametrize("final", [pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMED_OUT])
def test_cancelled_and_timed_out_jobs_reopen(backend: Backend, final: int) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job_id = await failed_job(store, final)
            assert (await store.reopen(job_id, queued_again(), reopen_fields())).status == pb.JOB_STATUS_QUEUED

    run(body())


def test_reopen_refuses_succeeded_running_and_unknown_jobs(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            done = await failed_job(store, pb.JOB_STATUS_SUCCEEDED)
            with pytest.raises(FailedPrecondition, match="SUCCEEDED"):
                await store.reopen(done, queued_again(), reopen_fields())
            assert (await store.get(done)).last_seq == 4, "a refused reopen writes nothing"
            queued, _ = await store.create(new_job())
            with pytest.raises(FailedPrecondition, match="QUEUED"):
                await store.reopen(queued.job_id, queued_again(), reopen_fields())
            with pytest.raises(NotFound):
                await store.reopen("no-such-job", queued_again(), reopen_fields())

    run(body())


def test_concurrent_reopens_reopen_once_and_wake_waiters(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            job_id = await failed_job(one)
            # A SQLite file serves one gateway process: its waiters are woken in process only.
            pair = (one,) if backend.name == "sqlite" else (one, two)
            waiters = [asyncio.ensure_future(s.wait(job_id, 4, 30.0)) for s in pair]
            stores = list(pair) * 3
            outcomes = await asyncio.gather(
                *(s.reopen(job_id, queued_again(), reopen_fields(f"r{i}")) for i, s in enumerate(stores)),
                return_exceptions=True,
            )
            assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
            assert all(isinstance(o, FailedPrecondition) for o in outcomes if isinstance(o, BaseException))
            await asyncio.wait_for(asyncio.gather(*waiters), 10)
            assert [e.seq for e in await two.events(job_id)] == [1, 2, 3, 4, 5]

    run(body())
