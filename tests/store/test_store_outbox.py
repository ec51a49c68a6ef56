"""The notification outbox contract on every adapter: rows stored with the job, due only once the
job is terminal, claimed once, retried, ended with an event after the terminal status, gone with
the job; and on SQL stores, kept across a reopen and disjoint between two replicas' claims."""

from __future__ import annotations

import asyncio
import datetime as dt

from tests.store.conftest import Backend, run
from tests.store.test_store_contract import new_job, progress, status
from workmesh.services.gateway.store import NotifyTarget
from workmesh.v1 import common_pb2 as pb

HOOK = NotifyTarget("webhook", "http://127.0.0.1:9/hook")
MAIL = NotifyTarget("email", "ops@example.org")


def outcome(delivered: bool, detail: str = "") -> pb.JobEvent:
    return pb.JobEvent(
        notification=pb.NotificationOutcome(
            channel="webhook", target="http://127.0.0.1:9", delivered=delivered, attempts=1, detail=detail
        )
    )


async def finish(store, job_id: str, value: int = pb.JOB_STATUS_SUCCEEDED) -> None:
    from workmesh.services.gateway.store import JobUpdate

    await store.append(job_id, [status(value)], JobUpdate(status=value, finished_at=dt.datetime.now(dt.UTC)))


def test_rows_are_due_only_once_the_job_ended_and_are_claimed_once(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, created = await store.create(new_job(notify=(HOOK, MAIL)))
            assert created and job.notify == (HOOK, MAIL)
            plain, _ = await store.create(new_job())
            await store.append(job.job_id, [progress(0.5)])
            assert await store.claim_deliveries(10, 30) == []  # running: nothing due
            await finish(store, job.job_id)
            await finish(store, plain.job_id)
            claimed = await store.claim_deliveries(10, 30)
            assert sorted((d.job_id, d.target) for d in claimed) == sorted([(job.job_id, HOOK), (job.job_id, MAIL)])
            assert len({d.delivery_id for d in claimed}) == 2
            assert all(d.attempts == 0 and d.first_at is not None for d in claimed)
            assert await store.claim_deliveries(10, 30) == []  # held

    run(body())


def test_a_retried_row_comes_back_with_its_count_and_first_attempt_time(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(notify=(HOOK,)))
            await finish(store, job.job_id, pb.JOB_STATUS_FAILED)
            [first] = await store.claim_deliveries(10, 30)
            await store.retry_delivery(
                first.delivery_id, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2), "HTTP 503"
            )
            assert await store.claim_deliveries(10, 30) == []  # not yet due again
            await asyncio.sleep(0.3)
            [again] = await store.claim_deliveries(10, 30)
            assert again.delivery_id == first.delivery_id
            assert again.attempts == 1
            assert abs((again.first_at - first.first_at).total_seconds()) < 0.01

    run(body())


def test_a_claim_that_is_never_ended_is_due_again_after_its_hold(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(notify=(HOOK,)))
            await finish(store, job.job_id)
            [first] = await store.claim_deliveries(10, 0.2)
            await asyncio.sleep(0.3)  # the claimer died: nobody ended or retried the row
            [again] = await store.claim_deliveries(10, 30)
            assert again.delivery_id == first.delivery_id and again.attempts == 0

    run(body())


def test_ending_a_row_appends_its_event_after_the_terminal_status(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(notify=(HOOK,)))
            await finish(store, job.job_id)
            [claimed] = await store.claim_deliveries(10, 30)
            event = await store.end_delivery(claimed.delivery_id, False, outcome(False, "HTTP 503"))
            assert event is not None and event.seq == 3
            events = await store.events(job.job_id)
            assert [e.WhichOneof("payload") for e in events] == ["status", "status", "notification"]
            assert events[-1].notification.detail == "HTTP 503" and not events[-1].notification.delivered
            record = await store.get(job.job_id)
            assert record.terminal and record.last_seq == 3
            assert await store.peek(job.job_id) == (3, True) if hasattr(store, "peek") else True
            # Ended once: a second end (a replica that lost its hold) adds nothing.
            assert await store.end_delivery(claimed.delivery_id, True, outcome(True)) is None
            assert len(await store.events(job.job_id)) == 3
            assert await store.claim_deliveries(10, 0) == []

    run(body())


def test_rows_go_with_their_job(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(notify=(HOOK, MAIL)))
            await finish(store, job.job_id, pb.JOB_STATUS_CANCELLED)
            assert await store.delete(job.job_id)
            assert await store.claim_deliveries(10, 30) == []

    run(body())


def test_an_idempotent_resubmit_adds_no_rows(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(notify=(HOOK,), idempotency_key="same"))
            again, created = await store.create(new_job(notify=(HOOK, MAIL), idempotency_key="same"))
            assert not created and again.job_id == job.job_id
            await finish(store, job.job_id)
            assert [d.target for d in await store.claim_deliveries(10, 30)] == [HOOK]

    run(body())


def test_rows_survive_a_reopen_and_two_replicas_claim_disjoint_rows(sql_backend: Backend) -> None:
    async def body() -> None:
        async with sql_backend.open() as store:
            ids = [(await store.create(new_job(notify=(HOOK, MAIL))))[0].job_id for _ in range(20)]
            for job_id in ids:
                await finish(store, job_id)
        async with sql_backend.open() as one, sql_backend.open() as two:  # a restart, then two replicas
            claimed: list[str] = []
            for _ in range(20):  # concurrent rounds until nothing is left (a loser of a race gets fewer)
                got = await asyncio.gather(*(s.claim_deliveries(7, 30) for s in (one, two, one, two)))
                if not any(got):
                    break
                claimed += [d.delivery_id for batch in got for d in batch]
            assert len(claimed) == len(set(claimed)) == 40

    run(body())
