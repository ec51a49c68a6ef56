"""Dispatcher.admit on the gateway's own SQLite file: a new job and its dispatch record are one
transaction, and a create that fails leaves nothing driven."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time

import pytest

from tests.gateway.mesh import Mesh, terminal
from tests.support import eventually_async, run
from workmesh.services.core.errors import FailedPrecondition
from workmesh.services.gateway._convert import new_job_id
from workmesh.services.gateway.store import JobRecord
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as c
from workmesh.workers.examples.basic import echo


def _record(dispatcher, job_id: str, key: str | None = None) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        workflow_type="echo",
        params={},
        idempotency_key=key,
        lease_owner=dispatcher.replica_id,
        lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=dispatcher.lease_seconds),
    )


def _stored_statuses(path, job_id: str) -> list[int]:
    """The job's status events as the database file holds them now (read outside the store)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT payload FROM job_events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
    events = [c.JobEvent.FromString(payload) for (payload,) in rows]
    return [e.status.status for e in events if e.WhichOneof("payload") == "status"]


@contextlib.asynccontextmanager
async def _echo_mesh(path):
    """A mesh on the SQLite file `path` with one echo worker (capacity 2) listed."""
    async with Mesh(store=SqlJobStore(f"sqlite:///{path}", exclusive=True)) as mesh:
        await mesh.add_worker([echo], capacity=2)
        await mesh.wait_instances("echo", 1)
        yield mesh


def test_a_new_job_is_stored_with_its_dispatch_in_one_commit(tmp_path):
    path = tmp_path / "jobs.db"

    async def main():
        async with _echo_mesh(path) as mesh:
            store = mesh.store
            dispatcher = mesh.gateway.dispatcher
            job_id = new_job_id()
            commits = store.commits
            stored, created = await dispatcher.admit(_record(dispatcher, job_id), time.monotonic())
            # Nothing awaited since the create's commit: DISPATCHED came with it, in one transaction.
            assert created and stored.job_id == job_id
            assert store.commits - commits == 1
            assert _stored_statuses(path, job_id) == [c.JOB_STATUS_QUEUED, c.JOB_STATUS_DISPATCHED]
            assert terminal(await mesh.follow(job_id)) == c.JOB_STATUS_SUCCEEDED
            attempts = await store.attempts(job_id)
            assert [(a.attempt, a.outcome) for a in attempts] == [(1, "SUCCEEDED")]

    run(main())


def test_a_job_with_an_idempotency_key_is_dispatched_after_its_create(tmp_path):
    path = tmp_path / "jobs.db"

    async def main():
        async with _echo_mesh(path) as mesh:
            dispatcher = mesh.gateway.dispatcher
            first = _record(dispatcher, new_job_id(), key="k-1")
            stored, created = await dispatcher.admit(first, time.monotonic())
            # The key may be taken: the dispatch is recorded only once the create said it is new.
            assert created and _stored_statuses(path, first.job_id) == [c.JOB_STATUS_QUEUED]
            assert terminal(await mesh.follow(first.job_id)) == c.JOB_STATUS_SUCCEEDED
            again, created = await dispatcher.admit(_record(dispatcher, new_job_id(), key="k-1"), time.monotonic())
            assert not created and again.job_id == first.job_id
            assert not dispatcher.driving(first.job_id)

    run(main())


def test_a_create_that_fails_leaves_no_job_driven(tmp_path):
    path = tmp_path / "jobs.db"

    async def main():
        async with _echo_mesh(path) as mesh:
            dispatcher = mesh.gateway.dispatcher
            bad = _record(dispatcher, new_job_id())
            bad.labels = {"note": b"bytes"}  # type: ignore[dict-item] - no JSON for the labels column
            with pytest.raises(TypeError):
                await dispatcher.admit(bad, time.monotonic())

            async def let_go():
                return not dispatcher.driving(bad.job_id)

            await eventually_async(let_go, timeout=5)
            assert _stored_statuses(path, bad.job_id) == []
            good = _record(dispatcher, new_job_id())
            await dispatcher.admit(good, time.monotonic())
            assert terminal(await mesh.follow(good.job_id)) == c.JOB_STATUS_SUCCEEDED

    run(main())


def test_a_clashing_id_is_refused_without_touching_the_job_driven(tmp_path):
    path = tmp_path / "jobs.db"

    async def main():
        store = SqlJobStore(f"sqlite:///{path}", exclusive=True)
        async with Mesh(store=store) as mesh:
            dispatcher = mesh.gateway.dispatcher  # no worker: the first job stays QUEUED
            job_id = new_job_id()
            await dispatcher.admit(_record(dispatcher, job_id), time.monotonic())
            with pytest.raises(FailedPrecondition, match="exists already"):
                await dispatcher.admit(_record(dispatcher, job_id), time.monotonic())
            assert dispatcher.driving(job_id)
            assert _stored_statuses(path, job_id) == [c.JOB_STATUS_QUEUED]

    run(main())


def test_a_key_expected_new_is_dispatched_with_its_create_and_a_taken_one_runs_nothing(tmp_path):
    path = tmp_path / "jobs.db"

    async def main():
        async with _echo_mesh(path) as mesh:
            store = mesh.store
            dispatcher = mesh.gateway.dispatcher
            first = _record(dispatcher, new_job_id(), key="workmesh.step:p:s:1")
            commits = store.commits
            stored, created = await dispatcher.admit(first, time.monotonic(), fresh=True)
            # A step's first ask: its create and its dispatch record are one transaction.
            assert created and stored.job_id == first.job_id
            assert store.commits - commits == 1
            assert _stored_statuses(path, first.job_id) == [c.JOB_STATUS_QUEUED, c.JOB_STATUS_DISPATCHED]
            assert terminal(await mesh.follow(first.job_id)) == c.JOB_STATUS_SUCCEEDED
            # The key was taken after all: its holder comes back, and the record queued for the
            # new id is let go of without being stored, dispatched or run.
            other = _record(dispatcher, new_job_id(), key="workmesh.step:p:s:1")
            again, created = await dispatcher.admit(other, time.monotonic(), fresh=True)
            assert not created and again.job_id == first.job_id

            async def let_go():
                return not dispatcher.driving(other.job_id)

            await eventually_async(let_go, timeout=5)
            assert await store.get(other.job_id) is None
            assert _stored_statuses(path, other.job_id) == []
            assert await store.attempts(other.job_id) == []
            assert [(a.attempt, a.outcome) for a in await store.attempts(first.job_id)] == [(1, "SUCCEEDED")]

    run(main())
