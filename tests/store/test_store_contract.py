"""The JobStore contract: jobs, numbered events, idempotency, waiting — on every adapter.

Leases, attempts and retention are in test_store_leases.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from tests.store.conftest import Backend, run
from tests.support import always_async
from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway.store import JobRecord, JobUpdate
from workmesh.v1 import common_pb2 as pb

UTC = dt.UTC


def new_job(workflow_type: str = "heat-demand", **fields) -> JobRecord:
    fields.setdefault("job_id", uuid.uuid4().hex)
    fields.setdefault("params", {"buildings": pb.ParamValue(int_value=10)})
    return JobRecord(workflow_type=workflow_type, **fields)


def progress(fraction: float) -> pb.JobEvent:
    return pb.JobEvent(progress=pb.Progress(fraction=fraction, message=f"{fraction:.2f}"))


def status(value: int, reason: str = "") -> pb.JobEvent:
    return pb.JobEvent(status=pb.StatusChange(status=value, reason=reason))


def test_create_then_get_round_trips_every_field(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
            params = {
                "buildings": pb.ParamValue(int_value=250),
                "profile": pb.ParamValue(string_value="office"),
                "scale": pb.ParamValue(float_value=1.5),
                "hourly": pb.ParamValue(bool_value=True),
                "blob": pb.ParamValue(bytes_value=b"\x00\xff"),
            }
            params["start"] = pb.ParamValue()
            params["start"].datetime_value.FromDatetime(when)
            job = new_job(
                params=params,
                created_at=when,
                timeout_s=90.0,
                max_attempts=5,
                trace_id="ab" * 16,
                labels={"user": "ana", "project": "nwn"},
                idempotency_key="key-1",
            )
            created, is_new = await store.create(job)
            assert is_new
            assert created.status == pb.JOB_STATUS_QUEUED and created.last_seq == 1
            got = await store.get(job.job_id)
            assert got is not None
            assert got.job_id == job.job_id and got.workflow_type == "heat-demand"
            assert got.params == params
            assert got.created_at == when
            assert (got.timeout_s, got.max_attempts, got.trace_id) == (90.0, 5, "ab" * 16)
            assert got.labels == {"user": "ana", "project": "nwn"}
            assert got.idempotency_key == "key-1"
            assert (got.status, got.last_seq, got.attempts, got.instance_id) == (pb.JOB_STATUS_QUEUED, 1, 0, "")
            assert got.progress is None and got.result is None and got.error is None
            first = await store.events(job.job_id)
            assert [e.seq for e in first] == [1]
            assert first[0].status.status == pb.JOB_STATUS_QUEUED
            assert await store.get("no-such-job") is None
            assert await store.events("no-such-job") == []

    run(body())


def test_list_is_newest_first_with_filters_and_pages(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            ids = []
            for i in range(7):
                job, _ = await store.create(new_job("a" if i % 2 == 0 else "b"))
                ids.append(job.job_id)
            await store.append(ids[2], [status(pb.JOB_STATUS_RUNNING)], JobUpdate(status=pb.JOB_STATUS_RUNNING))
            assert [j.job_id for j in await store.list_jobs()] == ids[::-1]
            assert [j.job_id for j in await store.list_jobs(workflow_type="a")] == ids[::-2]
            running = await store.list_jobs(statuses=[pb.JOB_STATUS_RUNNING])
            assert [j.job_id for j in running] == [ids[2]] and running[0].status == pb.JOB_STATUS_RUNNING
            queued_a = await store.list_jobs(workflow_type="a", statuses=[pb.JOB_STATUS_QUEUED, pb.JOB_STATUS_FAILED])
            assert [j.job_id for j in queued_a] == [ids[6], ids[4], ids[0]]
            pages, after = [], None
            while True:
                page = await store.list_jobs(limit=3, after=after)
                if not page:
                    break
                pages.append([j.job_id for j in page])
                after = page[-1].job_id
            assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]
            assert await store.list_jobs(after="no-such-job") == []

    run(body())


def test_idempotency_key_returns_the_earlier_job(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            first, is_new = await store.create(new_job(idempotency_key="once"))
            again, again_new = await store.create(new_job(idempotency_key="once"))
            assert is_new and not again_new
            assert again.job_id == first.job_id
            assert len(await store.list_jobs()) == 1
            other, other_new = await store.create(new_job(idempotency_key="other"))
            assert other_new and other.job_id != first.job_id
            assert (await store.get_by_key("once")).job_id == first.job_id
            assert (await store.get_by_key("other")).job_id == other.job_id
            assert await store.get_by_key("never") is None

    run(body())


def test_concurrent_creates_with_one_key_make_one_job(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            stores = [one, two] * 8
            results = await asyncio.gather(*(s.create(new_job(idempotency_key="race")) for s in stores))
            assert sum(is_new for _, is_new in results) == 1
            assert len({job.job_id for job, _ in results}) == 1
            assert len(await one.list_jobs()) == 1

    run(body())


def test_a_second_job_with_the_same_id_is_refused(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(job_id="same"))
            with pytest.raises(FailedPrecondition):
                await store.create(new_job(job_id="same"))
            assert (await store.get("same")).workflow_type == job.workflow_type

    run(body())


def test_append_numbers_without_gaps_under_concurrency(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            job, _ = await one.create(new_job())

            async def writer(store, n: int) -> list[int]:
                seqs = []
                for i in range(5):
                    numbered = await store.append(job.job_id, [progress(n / 100), progress(i / 100)])
                    seqs += [e.seq for e in numbered]
                return seqs

            results = await asyncio.gather(*(writer(one if n % 2 else two, n) for n in range(20)))
            seqs = sorted(s for r in results for s in r)
            assert seqs == list(range(2, 202))
            stored = await one.events(job.job_id, limit=1000)
            assert [e.seq for e in stored] == list(range(1, 202))
            assert all(e.HasField("time") for e in stored)
            assert (await two.get(job.job_id)).last_seq == 201

    run(body())


def test_append_applies_the_update_with_the_events(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            started = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
            numbered = await store.append(
                job.job_id,
                [status(pb.JOB_STATUS_RUNNING), progress(0.25)],
                JobUpdate(
                    status=pb.JOB_STATUS_RUNNING,
                    started_at=started,
                    attempts=1,
                    instance_id="w-1",
                    progress=pb.Progress(fraction=0.25, message="a quarter"),
                ),
            )
            assert [e.seq for e in numbered] == [2, 3]
            got = await store.get(job.job_id)
            assert (got.status, got.started_at, got.attempts, got.instance_id) == (
                pb.JOB_STATUS_RUNNING,
                started,
                1,
                "w-1",
            )
            assert got.progress == pb.Progress(fraction=0.25, message="a quarter")
            assert got.last_seq == 3 and got.updated_at >= got.created_at
            result = pb.JobResult(data=b"42")
            result.outputs.update({"peak_kw": 1234.5})
            await store.append(
                job.job_id,
                [pb.JobEvent(result=result), status(pb.JOB_STATUS_SUCCEEDED)],
                JobUpdate(status=pb.JOB_STATUS_SUCCEEDED, result=result, finished_at=started),
            )
            got = await store.get(job.job_id)
            assert got.terminal and got.result == result and got.finished_at == started
            assert got.instance_id == "w-1" and got.progress.fraction == 0.25  # untouched by None fields

    run(body())


def test_terminal_and_unknown_jobs_reject_appends(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            error = pb.JobError(code="HANDLER_ERROR", message="boom")
            await store.append(
                job.job_id,
                [pb.JobEvent(error=error), status(pb.JOB_STATUS_FAILED)],
                JobUpdate(status=pb.JOB_STATUS_FAILED, error=error),
            )
            with pytest.raises(FailedPrecondition):
                await store.append(job.job_id, [progress(1.0)])
            with pytest.raises(FailedPrecondition):
                await store.append(job.job_id, [], JobUpdate(status=pb.JOB_STATUS_SUCCEEDED))
            got = await store.get(job.job_id)
            assert (got.status, got.last_seq, got.error) == (pb.JOB_STATUS_FAILED, 3, error)
            assert len(await store.events(job.job_id)) == 3
            with pytest.raises(NotFound):
                await store.append("no-such-job", [progress(0.5)])

    run(body())


def test_events_replay_after_seq_with_limit(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            await store.append(job.job_id, [progress(i / 10) for i in range(9)])
            assert [e.seq for e in await store.events(job.job_id, after_seq=4)] == [5, 6, 7, 8, 9, 10]
            assert [e.seq for e in await store.events(job.job_id, after_seq=4, limit=2)] == [5, 6]
            assert await store.events(job.job_id, after_seq=10) == []
            replay = await store.events(job.job_id, after_seq=1, limit=1)
            assert replay[0].progress.fraction == 0.0

    run(body())


def test_wait_wakes_on_append_and_delete(backend: Backend) -> None:
    # Every wait below is given a 60 s timeout and bounded at 10 s: a store that does not wake a
    # waiter when it should fails with a TimeoutError, one that returns too early fails the
    # `always_async` window in which the waiter must still be waiting.
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            await asyncio.wait_for(store.wait(job.job_id, 0, timeout=60), 10)  # seq 1 exists: at once
            waiter = asyncio.create_task(store.wait(job.job_id, 1, timeout=60))
            await always_async(lambda: not waiter.done())  # nothing past seq 1 yet
            await store.append(job.job_id, [progress(0.5)])
            await asyncio.wait_for(waiter, 10)
            waiter = asyncio.create_task(store.wait(job.job_id, 2, timeout=60))
            await always_async(lambda: not waiter.done())
            assert await store.delete(job.job_id)
            await asyncio.wait_for(waiter, 10)  # woken by the delete
            await asyncio.wait_for(store.wait(job.job_id, 2, timeout=60), 10)  # unknown job: at once

    run(body())


def test_wait_returns_after_its_timeout_when_nothing_happens(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            quiet = asyncio.create_task(store.wait(job.job_id, 1, timeout=60))
            await always_async(lambda: not quiet.done())  # nothing new: it keeps waiting
            quiet.cancel()
            # ...and a short timeout ends the wait although nothing happened (10 s bound).
            await asyncio.wait_for(store.wait(job.job_id, 1, timeout=0.05), 10)
            assert [e.seq for e in await store.events(job.job_id)] == [1]

    run(body())


def test_wait_wakes_across_two_stores(backend: Backend) -> None:
    """Two gateway replicas: a WatchJob on one follows events appended through the other."""
    if backend.name == "sqlite":
        pytest.skip("a SQLite file serves one gateway process: waiters are woken in process only")

    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            job, _ = await one.create(new_job())
            for seq in range(1, 4):
                waiter = asyncio.create_task(two.wait(job.job_id, seq, timeout=60))
                await always_async(lambda w=waiter: not w.done())
                await one.append(job.job_id, [progress(seq / 10)])
                await asyncio.wait_for(waiter, 10)
            assert [e.seq for e in await two.events(job.job_id)] == [1, 2, 3, 4]

    run(body())


def test_delete_removes_the_job_and_its_events(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job(idempotency_key="k"))
            keep, _ = await store.create(new_job())
            await store.append(job.job_id, [progress(0.1), progress(0.2)])
            assert await store.delete(job.job_id)
            assert await store.get(job.job_id) is None
            assert await store.events(job.job_id) == []
            assert not await store.delete(job.job_id)
            assert await store.get_by_key("k") is None
            assert [j.job_id for j in await store.list_jobs()] == [keep.job_id]
            again, is_new = await store.create(new_job(idempotency_key="k"))
            assert is_new and again.job_id != job.job_id
            with pytest.raises(NotFound):
                await store.append(job.job_id, [progress(0.3)])

    run(body())


def test_appends_racing_a_terminal_update(backend: Backend) -> None:
    """Appends queued together apply in order: none after the terminal one, all updates kept."""

    async def body() -> None:
        async with backend.open() as store:
            job, _ = await store.create(new_job())
            results = await asyncio.gather(
                store.append(
                    job.job_id,
                    [status(pb.JOB_STATUS_RUNNING)],
                    JobUpdate(status=pb.JOB_STATUS_RUNNING, instance_id="w-1"),
                ),
                store.append(job.job_id, [progress(0.5)], JobUpdate(progress=pb.Progress(fraction=0.5))),
                store.append(job.job_id, [status(pb.JOB_STATUS_CANCELLED)], JobUpdate(status=pb.JOB_STATUS_CANCELLED)),
                store.append(job.job_id, [progress(0.6)], JobUpdate(progress=pb.Progress(fraction=0.6))),
                return_exceptions=True,
            )
            assert [[e.seq for e in r] for r in results[:3]] == [[2], [3], [4]]
            assert isinstance(results[3], FailedPrecondition)
            got = await store.get(job.job_id)
            assert (got.status, got.instance_id, got.progress.fraction, got.last_seq) == (
                pb.JOB_STATUS_CANCELLED,
                "w-1",
                0.5,
                4,
            )
            assert [e.WhichOneof("payload") for e in await store.events(job.job_id)] == [
                "status",
                "status",
                "progress",
                "status",
            ]

    run(body())


def test_creates_queued_together_resolve_ids_and_keys_in_order(backend: Backend) -> None:
    async def body() -> None:
        async with backend.open() as store:
            results = await asyncio.gather(
                store.create(new_job(job_id="a", idempotency_key="k")),
                store.create(new_job(job_id="b", idempotency_key="k")),
                store.create(new_job(job_id="a")),
                store.create(new_job(job_id="a", idempotency_key="k")),
                store.create(new_job(job_id="b")),
                return_exceptions=True,
            )
            assert [(r[0].job_id, r[1]) if isinstance(r, tuple) else type(r).__name__ for r in results] == [
                ("a", True),
                ("a", False),
                "FailedPrecondition",
                ("a", False),
                ("b", True),
            ]
            assert sorted(j.job_id for j in await store.list_jobs()) == ["a", "b"]
            assert [e.seq for e in await store.events("b")] == [1]

    run(body())


def test_steps_are_found_or_created_once_and_listed_by_parent(backend: Backend) -> None:
    # A workflow step is a job with parent_id/step_name, created under a key made of them:
    # concurrent asks for one step make one child, and children() lists a parent's steps.
    async def body() -> None:
        async with backend.open() as one, backend.open() as two:
            parent, _ = await one.create(new_job())
            key = f"workmesh.step:{parent.job_id}:simulate:1"
            stores = [one, two] * 4
            made = await asyncio.gather(
                *(s.create(new_job(parent_id=parent.job_id, step_name="simulate", idempotency_key=key)) for s in stores)
            )
            assert sum(is_new for _, is_new in made) == 1
            child_id = made[0][0].job_id
            assert {job.job_id for job, _ in made} == {child_id}
            kpi, _ = await two.create(new_job("kpi", parent_id=parent.job_id, step_name="kpi"))
            await one.create(new_job())  # an unrelated job is nobody's step
            steps = await one.children(parent.job_id)
            assert [(s.job_id, s.step_name, s.parent_id) for s in steps] == [
                (child_id, "simulate", parent.job_id),
                (kpi.job_id, "kpi", parent.job_id),
            ]
            got = await two.get(child_id)
            assert (got.parent_id, got.step_name) == (parent.job_id, "simulate")
            assert (await one.get(parent.job_id)).parent_id == ""
            assert await one.children(child_id) == []
            assert await one.children("no-such-job") == []
            await one.delete(kpi.job_id)
            assert [s.job_id for s in await two.children(parent.job_id)] == [child_id]

    run(body())
