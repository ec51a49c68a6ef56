"""The gateway's SQLite writer on the event loop (``_loop.LoopWriter``): a busy loop's
transaction waits for the callbacks queued behind it, an idle loop's does not wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.store.conftest import run
from tests.store.test_store_contract import new_job, progress
from workmesh.services.gateway.store.sql._loop import LoopWriter
from workmesh.services.gateway.store.sql._store import SqlJobStore


@contextlib.asynccontextmanager
async def _gateway_store(path, hold: float) -> AsyncIterator[SqlJobStore]:
    """A started store as the gateway opens it, its writer holding at most `hold` seconds."""
    store = SqlJobStore(f"sqlite:///{path}", exclusive=True)
    await store.start()
    try:
        writer = store._writer
        assert isinstance(writer, LoopWriter)
        writer.hold = hold
        yield store
    finally:
        await store.close()


@contextlib.contextmanager
def _busy_loop():
    """Keeps two callbacks queued on the running loop, as on a loop that is behind, until the end."""
    loop = asyncio.get_running_loop()
    busy = True

    def spin() -> None:
        if busy:
            loop.call_soon(spin)
            loop.call_soon(lambda: None)

    spin()
    try:
        yield
    finally:
        busy = False


def test_a_busy_loop_commits_the_writes_of_several_turns_together(tmp_path) -> None:
    async def body() -> None:
        async with _gateway_store(tmp_path / "jobs.db", hold=3600.0) as store:
            jobs = [(await store.create(new_job()))[0].job_id for _ in range(3)]
            before = store.commits
            with _busy_loop():
                appends = []
                for job in jobs:
                    appends.append(asyncio.ensure_future(store.append(job, [progress(0.5)])))
                    for _ in range(3):
                        await asyncio.sleep(0)  # a few loop turns apart
                assert store.commits == before  # held while the loop is behind
                assert not any(a.done() for a in appends)  # nothing answered before its commit
            # The loop caught up: the three appends commit together, at once.
            stored = await asyncio.wait_for(asyncio.gather(*appends), 60)
            assert store.commits - before == 1
            assert [events[0].seq for events in stored] == [2, 2, 2]

    run(body())


def test_an_idle_loop_commits_at_the_next_turn(tmp_path) -> None:
    async def body() -> None:
        async with _gateway_store(tmp_path / "jobs.db", hold=3600.0) as store:
            job, _ = await asyncio.wait_for(store.create(new_job()), 60)
            before = store.commits
            stored = await asyncio.wait_for(store.append(job.job_id, [progress(0.5)]), 60)
            assert store.commits - before == 1
            assert stored[0].seq == 2

    run(body())


def test_a_loop_that_stays_busy_commits_after_the_hold(tmp_path) -> None:
    async def body() -> None:
        async with _gateway_store(tmp_path / "jobs.db", hold=0.05) as store:
            job, _ = await store.create(new_job())
            before = store.commits
            with _busy_loop():
                stored = await asyncio.wait_for(store.append(job.job_id, [progress(0.5)]), 60)
                assert store.commits - before == 1  # committed while the loop is still busy
            assert stored[0].seq == 2

    run(body())
