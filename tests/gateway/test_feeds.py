"""The progress fan-out (``_feeds.JobFeeds`` behind ``_watch.Watches``, WatchJob's stream): many
watchers of a job share one reader, each gets every event in order up to the terminal one,
a slow one falls behind the shared window and still gets every event, and a watcher that goes
away frees its part. Real stores: the memory store and the gateway's SQLite store."""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.test_jobqueue import Clock
from tests.store.test_store_contract import new_job, progress, status
from tests.support import run
from workmesh.services.core.errors import NotFound
from workmesh.services.gateway._feeds import JobFeeds, entry_of, newest_progress
from workmesh.services.gateway._queue_watch import QueueWatch
from workmesh.services.gateway._watch import Watches
from workmesh.services.gateway.dispatch._fairshare import Scheduler
from workmesh.services.gateway.dispatch._jobqueue import JobQueue
from workmesh.services.gateway.store import JobUpdate
from workmesh.services.gateway.store._memory import MemoryJobStore
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import common_pb2 as pb

SUCCEEDED = pb.JOB_STATUS_SUCCEEDED


@pytest.fixture(params=["memory", "sqlite-gateway"])
def make_store(request, tmp_path):
    if request.param == "memory":
        return MemoryJobStore
    return lambda: SqlJobStore(f"sqlite:///{tmp_path}/jobs.db", retry_for=30.0, exclusive=True)


async def _started(make_store):
    store = make_store()
    if hasattr(store, "start"):
        await store.start()
    return store


def _watches(store, window: int = 2048) -> tuple[Watches, JobFeeds]:
    feeds = JobFeeds(store, idle=5.0, window=window)
    queue = QueueWatch(JobQueue(Scheduler(), capacity=dict, clock=Clock()), dict)
    return Watches(store, feeds, queue, None), feeds


async def _collect(
    watches: Watches, job_id: str, after: int = 0, pause: asyncio.Event | None = None, latest: bool = False
) -> list:
    seen = []
    async for batch in watches.entries(job_id, after, latest_progress=latest):
        seen.extend(pb.JobEvent.FromString(entry.data) for entry in batch)
        if pause is not None:
            await pause.wait()  # a slow client: reads nothing more until let go
    return seen


def test_many_watchers_share_one_feed_and_each_gets_every_event_in_order(make_store) -> None:
    async def body() -> None:
        store = await _started(make_store)
        try:
            watches, feeds = _watches(store)
            job, _ = await store.create(new_job())
            tasks = [asyncio.create_task(_collect(watches, job.job_id)) for _ in range(20)]
            await asyncio.sleep(0.05)
            assert len(feeds) == 1  # one reader for the twenty watchers
            for i in range(50):
                await store.append(job.job_id, [progress(i / 50)])
            await store.append(job.job_id, [status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            seen = await asyncio.gather(*tasks)
            for events in seen:
                assert [e.seq for e in events] == list(range(1, 53))
                assert events[-1].status.status == SUCCEEDED
                assert [e.progress.fraction for e in events[1:-1]] == [pytest.approx(i / 50) for i in range(50)]
            assert len(feeds) == 0  # the last watcher's end stopped the reader
        finally:
            await store.close()

    run(body())


def test_a_slow_watcher_behind_the_window_still_gets_every_event_and_the_end(make_store) -> None:
    async def body() -> None:
        store = await _started(make_store)
        try:
            watches, feeds = _watches(store, window=16)
            job, _ = await store.create(new_job())
            paused = asyncio.Event()
            slow = asyncio.create_task(_collect(watches, job.job_id, pause=paused))
            fast = asyncio.create_task(_collect(watches, job.job_id))
            await asyncio.sleep(0.05)
            for i in range(200):  # far more than the window while the slow one reads nothing
                await store.append(job.job_id, [progress(i / 200)])
            await store.append(job.job_id, [status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            fast_seen = await fast
            assert not slow.done()
            paused.set()
            slow_seen = await slow
            assert [e.seq for e in slow_seen] == [e.seq for e in fast_seen] == list(range(1, 203))
            assert slow_seen == fast_seen
            assert slow_seen[-1].status.status == SUCCEEDED
            assert len(feeds) == 0
        finally:
            await store.close()

    run(body())


def test_a_watcher_that_goes_away_frees_the_feed_and_others_go_on(make_store) -> None:
    async def body() -> None:
        store = await _started(make_store)
        try:
            watches, feeds = _watches(store)
            job, _ = await store.create(new_job())
            leaving = asyncio.create_task(_collect(watches, job.job_id))
            await asyncio.sleep(0.05)
            assert len(feeds) == 1
            leaving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await leaving
            assert len(feeds) == 0  # its only watcher left: no reader stays behind
            staying = asyncio.create_task(_collect(watches, job.job_id, after=1))
            await asyncio.sleep(0.05)
            await store.append(job.job_id, [progress(0.5), status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            assert [e.seq for e in await staying] == [2, 3]
            assert len(feeds) == 0
        finally:
            await store.close()

    run(body())


def test_watchers_of_a_deleted_job_end_with_not_found(make_store) -> None:
    async def body() -> None:
        store = await _started(make_store)
        try:
            watches, feeds = _watches(store)
            job, _ = await store.create(new_job())
            tasks = [asyncio.create_task(_collect(watches, job.job_id)) for _ in range(3)]
            await asyncio.sleep(0.05)
            await store.delete(job.job_id)
            for task in tasks:
                with pytest.raises(NotFound, match="was deleted"):
                    await task
            assert len(feeds) == 0
            with pytest.raises(NotFound, match="no job"):
                await _collect(watches, job.job_id)
        finally:
            await store.close()

    run(body())


def test_a_slow_latest_progress_watcher_skips_superseded_progress_but_nothing_else(make_store) -> None:
    async def body() -> None:
        store = await _started(make_store)
        try:
            watches, feeds = _watches(store, window=16)
            job, _ = await store.create(new_job())
            paused = asyncio.Event()
            slow = asyncio.create_task(_collect(watches, job.job_id, pause=paused, latest=True))
            await asyncio.sleep(0.05)  # it has sent the QUEUED event and waits for its client
            logs = []
            for i in range(40):
                await store.append(job.job_id, [progress(i / 40)])
                if i % 10 == 9:
                    logs.append(pb.JobEvent(log=pb.LogLine(message=f"log {i}")))
                    await store.append(job.job_id, [logs[-1]])
            await store.append(job.job_id, [progress(1.0), status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            every = [e for after in (0, 1000) for e in await store.events(job.job_id, after)]
            paused.set()
            seen = await slow
            seqs = [e.seq for e in seen]
            assert seqs == sorted(seqs) and set(seqs) <= {e.seq for e in every}
            kinds = [e.WhichOneof("payload") for e in seen]
            # Every log and the end are there; of the progress only the newest of each batch.
            assert [e.log.message for e in seen if e.HasField("log")] == [m.log.message for m in logs]
            assert seen[-1].status.status == SUCCEEDED and seen[-2].progress.fraction == 1.0
            # Everything after QUEUED was ready at once when its client read on: one batch.
            assert kinds == ["status", "log", "log", "log", "log", "progress", "status"]
            for a, b in zip(seen, seen[1:], strict=False):  # no two progress events in a row were both kept
                skipped = [e for e in every if a.seq < e.seq < b.seq]
                assert all(e.HasField("progress") for e in skipped)
            assert len(feeds) == 0
        finally:
            await store.close()

    run(body())


def test_newest_progress_keeps_order_and_every_other_event() -> None:
    events = [progress(0.1), progress(0.2), status(pb.JOB_STATUS_RUNNING), progress(0.3), progress(0.4)]
    entries = [entry_of(_numbered(e, i + 1)) for i, e in enumerate(events)]
    assert [e.seq for e in newest_progress(entries)] == [3, 5]
    assert newest_progress(entries[:1]) == entries[:1]
    assert newest_progress(entries[2:4]) == entries[2:4]


def _numbered(event: pb.JobEvent, seq: int) -> pb.JobEvent:
    event.seq = seq
    return event
