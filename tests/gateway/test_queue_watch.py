"""QueueWatch: the places it tells watchers follow the queue, and many watchers cost one
simulation per burst of queue changes (a real JobQueue and Scheduler)."""

from __future__ import annotations

import asyncio

from tests.gateway.test_jobqueue import A, B, Clock, pending
from tests.support import run
from workmesh.services.gateway._queue_watch import QueueWatch
from workmesh.services.gateway.dispatch import _jobqueue
from workmesh.services.gateway.dispatch._fairshare import Scheduler
from workmesh.services.gateway.dispatch._jobqueue import JobQueue


def test_many_watchers_share_one_simulation_per_burst_and_see_only_changes(monkeypatch):
    runs = []
    real = _jobqueue.simulate

    def counted(*args, **kwargs):
        runs.append(kwargs.get("stop_at"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_jobqueue, "simulate", counted)

    async def body():
        clock = Clock()
        q = JobQueue(Scheduler(), capacity=lambda: {"sleep": 1}, clock=clock)
        for i in range(20):
            q.push(pending(f"a{i}", A, 1.0 + i))
        watch = QueueWatch(q, dict, interval=0.0)
        watchers = [watch.watch(f"a{i}") for i in range(20) for _ in range(5)]  # 100 streams
        assert watch.watched == 100
        assert [watch.take(w) for w in watchers[:5]] == [(1, 20, None)] * 5
        assert watch.take(watchers[0]) is None  # told already: nothing new
        runs.clear()
        # A burst: the first job starts and another owner's job is queued — one refresh.
        q.take(q.peek("sleep"))
        q.push(pending("b0", B, 50.0))
        await asyncio.sleep(0.01)
        assert runs == [None]  # one whole-queue simulation answered all 100 watchers
        assert watch.take(watchers[0]) is None  # a0 left the queue: nothing to tell
        # b0's owner has no usage while a's job runs: b0 goes first, then a1, a2.
        assert watch.take(watchers[5]) == (2, 20, None)
        assert watch.take(watchers[10]) == (3, 20, None)
        assert watch.take(watchers[10]) is None
        for w in watchers:
            watch.unwatch(w)
        assert watch.watched == 0
        q.discard("a5")
        await asyncio.sleep(0.01)
        assert runs == [None]  # no watchers: no simulation
        watch.close()

    run(body())
