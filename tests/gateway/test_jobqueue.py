"""The dispatcher's queue around the scheduler: charges, learned runtimes, places, and what a
flush keeps when the store fails (a stand-in store: this tests the queue's bookkeeping only)."""

from __future__ import annotations

import pytest

from tests.support import run
from workmesh.services.gateway.dispatch._attempt import Pending
from workmesh.services.gateway.dispatch._fairshare import Owner, Scheduler
from workmesh.services.gateway.dispatch._jobqueue import JobQueue
from workmesh.v1 import common_pb2, worker_pb2

A, B = Owner("t", "a"), Owner("t", "b")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pending(job_id: str, owner: Owner, at: float, seconds: float = 1.0) -> Pending:
    request = worker_pb2.ExecuteRequest(
        job_id=job_id, workflow_type="sleep", params={"seconds": common_pb2.ParamValue(float_value=seconds)}
    )
    return Pending(job_id, "sleep", request, None, 3, owner=owner, enqueued_at=at)


class FlakyStore:
    """Records what the queue writes; fails add_runtimes once when asked to."""

    def __init__(self) -> None:
        self.usage: dict[Owner, tuple[float, float]] = {}
        self.runtimes: list = []
        self.fail_runtimes = False

    async def add_usage(self, charges, half_life_s):
        for owner, (value, at) in charges.items():
            old, _ = self.usage.get(owner, (0.0, at))
            self.usage[owner] = (old + value, at)
        return dict(self.usage)

    async def add_runtimes(self, rows):
        if self.fail_runtimes:
            self.fail_runtimes = False
            raise ConnectionError("database away")
        self.runtimes.extend(rows)


def test_ended_jobs_charge_usage_and_teach_runtimes_and_places_follow_the_scheduler():
    clock = Clock()
    q = JobQueue(Scheduler(), capacity=lambda: {"sleep": 1}, clock=clock)
    for i in range(3):
        q.push(pending(f"a{i}", A, 1.0 + i, seconds=2.0))
    q.push(pending("b0", B, 10.0))
    first = q.peek("sleep")
    assert first.job_id == "a0"
    q.take(first)
    clock.now += 4.0
    q.ended("a0", succeeded=True, version="1.0.0")
    assert q.scheduler.usage(A, clock.now) == pytest.approx(4.0, rel=1e-3)
    assert q.model.runs("sleep", "1.0.0") == 1
    # B has no usage: it is next, whatever A's older jobs.
    assert q.place("b0")[0] == 1 and q.place("a1")[0] == 2
    position, queued, start = q.place("a2")
    assert (position, queued) == (3, 3) and start == pytest.approx(clock.now + 8.0)


def test_a_failed_runtime_write_keeps_the_runtimes_but_not_a_second_copy_of_the_usage():
    clock = Clock()
    store = FlakyStore()
    q = JobQueue(Scheduler(), capacity=lambda: {"sleep": 1}, clock=clock)
    q.push(pending("a0", A, 1.0))
    q.take(q.peek("sleep"))
    clock.now += 2.0
    q.ended("a0", succeeded=True, version="1")
    store.fail_runtimes = True
    with pytest.raises(ConnectionError):
        run(q.flush(store))
    run(q.flush(store))
    assert store.usage[A][0] == pytest.approx(2.0, rel=1e-3)  # once, not twice
    assert len(store.runtimes) == 1
    assert q.scheduler.usage(A, clock.now) == pytest.approx(2.0, rel=1e-3)


def test_a_retry_queued_before_its_attempt_was_accounted_is_charged_and_queued_again():
    clock = Clock()
    q = JobQueue(Scheduler(), clock=clock)
    job = pending("a0", A, 1.0)
    q.push(job)
    q.take(q.peek("sleep"))
    clock.now += 1.0
    q.push(job)  # the backoff timer fired before the attempt's end was accounted
    assert q.peek("sleep") is job and q.scheduler.usage(A, clock.now) == pytest.approx(1.0, rel=1e-3)
    q.ended("a0")  # the late end changes nothing
    assert q.queued() == 1


def test_cancelled_jobs_are_skipped():
    q = JobQueue(Scheduler(), clock=Clock())
    job = pending("a0", A, 1.0)
    q.push(job)
    q.push(pending("a1", A, 2.0))
    job.cancelled = True
    assert q.peek("sleep").job_id == "a1" and q.queued() == 1
