"""The JobStore contract, continued: row leases, attempts and retention — on every adapter."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from tests.support import eventually_async
from workmesh.services.core.errors import NotFound
from workmesh.services.gateway.store import JobUpdate
from workmesh.v1 import common_pb2 as pb

UTC = dt.UTC
LEASES = ("claim", "renew", "release")


def test_two_owners_claim_disjoint_sets(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            backend.needs(one, *LEASES)
            ids = [(await one.create(new_job()))[0].job_id for _ in range(30)]
            rounds = await asyncio.gather(
                *(store.claim(owner, 4, 60) for _ in range(5) for store, owner in ((one, "a"), (two, "b")))
            )
            claimed = [job.job_id for jobs in rounds for job in jobs]
            assert len(claimed) == len(set(claimed)) == 30  # 10 claims of up to 4: all, each once
            assert set(claimed) == set(ids)
            assert await one.claim("a", 10, 60) == [] and await two.claim("b", 10, 60) == []

    run(body())


def test_claim_takes_oldest_first_and_respects_types_not_before_and_terminal(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            backend.needs(store, *LEASES)
            later = dt.datetime.now(UTC) + dt.timedelta(hours=1)
            a1 = (await store.create(new_job("a")))[0].job_id
            b1 = (await store.create(new_job("b")))[0].job_id
            a2 = (await store.create(new_job("a")))[0].job_id
            waiting = (await store.create(new_job("a")))[0].job_id
            await store.append(waiting, [status(pb.JOB_STATUS_QUEUED, "retry later")], JobUpdate(not_before=later))
            done = (await store.create(new_job("a")))[0].job_id
            await store.append(done, [status(pb.JOB_STATUS_CANCELLED)], JobUpdate(status=pb.JOB_STATUS_CANCELLED))
            assert [j.job_id for j in await store.claim("g", 10, 60, types=["a"])] == [a1, a2]
            assert await store.claim("g", 10, 60, types=["c"]) == []
            assert [j.job_id for j in await store.claim("g", 10, 60)] == [b1]
            await store.append(waiting, [], JobUpdate(not_before=dt.datetime.now(UTC) - dt.timedelta(seconds=1)))
            claimed = await store.claim("g", 10, 60)
            assert [j.job_id for j in claimed] == [waiting] and claimed[0].workflow_type == "a"

    run(body())


def test_expired_leases_hand_over_and_renew_keeps_them(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            backend.needs(one, *LEASES)
            kept = (await one.create(new_job()))[0].job_id
            lost = (await one.create(new_job()))[0].job_id
            assert {j.job_id for j in await one.claim("dead", 10, 0.3)} == {kept, lost}
            assert await two.claim("alive", 10, 60) == []
            assert await one.renew("dead", [kept], 3600) == {kept}

            async def handed_over() -> list[str]:
                return [j.job_id for j in await two.claim("alive", 10, 60)]

            assert await eventually_async(handed_over, timeout=20) == [lost]
            assert await one.renew("dead", [kept, lost], 60) == {kept}  # `lost` belongs to "alive" now
            assert await two.renew("alive", [kept, lost, "no-such-job"], 60) == {lost}

    run(body())


def test_release_frees_and_terminal_jobs_drop_their_lease(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            backend.needs(store, *LEASES)
            first = (await store.create(new_job()))[0].job_id
            second = (await store.create(new_job()))[0].job_id
            assert len(await store.claim("g1", 10, 60)) == 2
            await store.release("other", [first])  # not the owner: nothing happens
            assert await store.claim("g2", 10, 60) == []
            await store.release("g1", [first])
            assert [j.job_id for j in await store.claim("g2", 10, 60)] == [first]
            await store.append(second, [status(pb.JOB_STATUS_SUCCEEDED)], JobUpdate(status=pb.JOB_STATUS_SUCCEEDED))
            assert await store.renew("g1", [second], 60) == set()
            assert await store.claim("g2", 10, 60) == []  # finished jobs are never claimed

    run(body())


def test_running_jobs_of_a_dead_owner_are_claimed_for_reattach(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            backend.needs(store, *LEASES)
            job = (await store.create(new_job()))[0].job_id
            assert len(await store.claim("g1", 1, 0.2)) == 1
            await store.append(
                job,
                [status(pb.JOB_STATUS_RUNNING)],
                JobUpdate(status=pb.JOB_STATUS_RUNNING, instance_id="w-1", attempts=1),
            )

            async def reclaimed() -> list:
                return await store.claim("g2", 1, 60)

            again = await eventually_async(reclaimed, timeout=20)
            assert again[0].job_id == job and again[0].status == pb.JOB_STATUS_RUNNING
            assert again[0].instance_id == "w-1" and again[0].last_seq == 2

    run(body())


def test_attempts_are_recorded(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            backend.needs(store, "start_attempt", "end_attempt", "attempts")
            job = (await store.create(new_job()))[0].job_id
            t0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
            await store.start_attempt(job, 1, "w-1", started_at=t0)
            await store.end_attempt(job, 1, "LOST", "stream broken", ended_at=t0 + dt.timedelta(seconds=5))
            await store.start_attempt(job, 2, "w-2")
            attempts = await store.attempts(job)
            assert [(a.attempt, a.instance_id, a.outcome) for a in attempts] == [(1, "w-1", "LOST"), (2, "w-2", "")]
            assert attempts[0].started_at == t0 and attempts[0].ended_at == t0 + dt.timedelta(seconds=5)
            assert attempts[0].reason == "stream broken"
            assert attempts[1].ended_at is None and attempts[1].started_at.tzinfo is not None
            await store.end_attempt(job, 2, "SUCCEEDED")
            assert (await store.attempts(job))[1].outcome == "SUCCEEDED"
            with pytest.raises(NotFound):
                await store.start_attempt("no-such-job", 1, "w-1")
            with pytest.raises(NotFound):
                await store.end_attempt(job, 3, "FAILED")
            assert await store.attempts("no-such-job") == []
            assert await store.delete(job)
            assert await store.attempts(job) == []

    run(body())


def test_retention_deletes_only_jobs_finished_before_the_cutoff(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            backend.needs(store, "delete_finished_before")
            now = dt.datetime.now(UTC)
            old, recent, running = [(await store.create(new_job()))[0].job_id for _ in range(3)]
            for job, finished in ((old, now - dt.timedelta(days=8)), (recent, now - dt.timedelta(hours=1))):
                await store.append(
                    job,
                    [progress(1.0), status(pb.JOB_STATUS_SUCCEEDED)],
                    JobUpdate(status=pb.JOB_STATUS_SUCCEEDED, finished_at=finished),
                )
            await store.append(running, [status(pb.JOB_STATUS_RUNNING)], JobUpdate(status=pb.JOB_STATUS_RUNNING))
            assert await store.finished_before(now - dt.timedelta(days=7)) == [old]
            assert await store.finished_before(now + dt.timedelta(seconds=1)) == [old, recent]  # oldest first
            assert await store.finished_before(now + dt.timedelta(seconds=1), limit=1) == [old]
            assert await store.delete_finished_before(now - dt.timedelta(days=7)) == 1
            assert await store.get(old) is None and await store.events(old) == []
            assert {j.job_id for j in await store.list_jobs()} == {recent, running}
            assert await store.delete_finished_before(now + dt.timedelta(seconds=1)) == 1  # running stays
            assert [j.job_id for j in await store.list_jobs()] == [running]

    run(body())
