"""The scheduler as a pure function of its state, driven by a fake clock (no I/O, no sleeps)."""

from __future__ import annotations

import pytest

from workmesh.services.gateway.dispatch._fairshare import (
    Limits,
    Owner,
    QueuedJob,
    Scheduler,
    Shares,
    UsageLedger,
)
from workmesh.services.gateway.dispatch._queue_sim import simulate

A, B, C = Owner("t", "a"), Owner("t", "b"), Owner("t", "c")


def submit(
    s: Scheduler, owner: Owner, n: int, at: float, wf_type: str = "sleep", priority: int = 0, prefix: str = ""
) -> list[str]:
    ids = []
    for i in range(n):
        job_id = f"{prefix or owner.user}{at:g}-{i}"
        s.add(QueuedJob(job_id, wf_type, owner, priority, enqueued_at=at, seq=i))
        ids.append(job_id)
    return ids


class Cluster:
    """A fake mesh: `capacity` slots per type, jobs that run `length` seconds, a fake clock."""

    def __init__(self, s: Scheduler, capacity: dict[str, int], length: dict[str, float] | float = 1.0):
        self.s, self.capacity, self.length = s, capacity, length
        self.now = 0.0
        self.busy = {t: 0 for t in capacity}
        self.ends: list[tuple[float, str, str]] = []
        self.starts: dict[str, float] = {}
        self.intervals: list[tuple[Owner, float, float]] = []

    def runtime(self, job_id: str) -> float:
        return self.length if isinstance(self.length, float) else self.length[job_id.split("-")[0]]

    def fill(self) -> None:
        for wf_type, cap in self.capacity.items():
            while self.busy[wf_type] < cap:
                job = self.s.next_job(wf_type, self.now)
                if job is None:
                    break
                self.s.start(job.job_id, self.now)
                self.busy[wf_type] += 1
                self.starts[job.job_id] = self.now
                end = self.now + self.runtime(job.job_id)
                self.ends.append((end, job.job_id, wf_type))
                self.intervals.append((job.owner, self.now, end))

    def run_until(self, t: float) -> None:
        self.fill()
        while self.ends:
            self.ends.sort()
            end, job_id, wf_type = self.ends[0]
            if end > t:
                break
            self.ends.pop(0)
            self.now = end
            self.s.finish(job_id, end)
            self.busy[wf_type] -= 1
            self.fill()
        self.now = max(self.now, t)
        self.fill()

    def share(self, owner: Owner, t0: float, t1: float) -> float:
        def work(o):
            return sum(max(0.0, min(e, t1) - max(s, t0)) for who, s, e in self.intervals if o is None or who == o)

        return work(owner) / work(None)


def test_work_conserving_a_user_alone_gets_every_slot():
    s = Scheduler()
    submit(s, A, 10, 0.0)
    mesh = Cluster(s, {"sleep": 4})
    mesh.fill()
    assert mesh.busy["sleep"] == 4
    mesh.run_until(100)
    assert len(mesh.starts) == 10 and not s.queued_jobs()
    # Never an idle slot while a job of its type could start: 10 jobs of 1 s on 4 slots end by 3 s.
    assert max(mesh.starts.values()) == 2.0


def test_light_user_starts_within_one_job_length_behind_a_heavy_one():
    s = Scheduler()
    submit(s, A, 200, 0.0)
    mesh = Cluster(s, {"sleep": 4})
    mesh.run_until(2.0)
    b_jobs = submit(s, B, 10, 2.0)
    c_job = submit(s, C, 1, 2.0)[0]
    mesh.length = {"a0": 1.0, "b2": 1.0, "c2": 5.0}
    mesh.run_until(300)
    assert min(mesh.starts[j] for j in b_jobs) <= 3.0
    assert mesh.starts[c_job] <= 3.0
    assert len(mesh.starts) == 211  # nobody starves: every job ran


def test_fifo_switch_keeps_submission_order_whoever_submits():
    s = Scheduler(policy="fifo")
    submit(s, A, 20, 0.0)
    b_jobs = submit(s, B, 1, 1.0, priority=10)
    mesh = Cluster(s, {"sleep": 4})
    mesh.run_until(100)
    assert mesh.starts[b_jobs[0]] == 5.0  # behind all 20 of A's jobs


@pytest.mark.parametrize("weights", [(1.0, 1.0), (2.0, 1.0)])
def test_backlogged_users_share_worker_seconds_by_weight(weights):
    shares = Shares(users={("t", "a"): weights[0], ("t", "b"): weights[1]})
    s = Scheduler(shares)
    submit(s, A, 300, 0.0)
    submit(s, B, 300, 0.0)
    mesh = Cluster(s, {"sleep": 6})
    mesh.run_until(60.0)
    assert s.queued_count(A) and s.queued_count(B)  # both backlogged over the whole window
    expected = weights[0] / sum(weights)
    assert mesh.share(A, 0.0, 60.0) == pytest.approx(expected, abs=0.1 * expected)


def test_tenant_weights_come_before_users_within_a_tenant():
    x1, x2, y1 = Owner("x", "1"), Owner("x", "2"), Owner("y", "1")
    s = Scheduler(Shares(tenants={"x": 1.0, "y": 1.0}))
    for owner in (x1, x2, y1):
        submit(s, owner, 200, 0.0, prefix=owner.tenant + owner.user)
    mesh = Cluster(s, {"sleep": 4})
    mesh.run_until(40.0)
    # Tenant y's single user gets half; tenant x's two users split the other half.
    assert mesh.share(y1, 0, 40) == pytest.approx(0.5, abs=0.05)
    assert mesh.share(x1, 0, 40) == pytest.approx(0.25, abs=0.05)
    assert mesh.share(x2, 0, 40) == pytest.approx(0.25, abs=0.05)


def test_usage_decays_with_the_half_life():
    ledger = UsageLedger(half_life_s=3600)
    ledger.charge(A, 0.0, 100.0)
    assert ledger.usage(A, 100.0) == pytest.approx(100.0, rel=0.02)
    assert ledger.usage(A, 100.0 + 3600) == pytest.approx(ledger.usage(A, 100.0) / 2)
    # A running job counts as it runs.
    assert ledger.usage(B, 50.0, running_since=[0.0]) == pytest.approx(50.0, rel=0.01)


def test_old_heavy_usage_decays_below_recent_light_usage():
    s = Scheduler(Shares(half_life_s=60.0))
    s.ledger.charge(A, 0.0, 100.0)  # A: 100 s of work that ended at t=100
    s.ledger.charge(B, 400.0, 440.0)  # B: 40 s of work just now
    submit(s, A, 1, 440.0)
    submit(s, B, 1, 430.0)
    # 340 s later A's 100 s have halved five times (~3 s left): A is now the lighter user.
    assert s.next_job("sleep", 440.0).owner == A
    # Without decay (a very long half-life) B would be chosen.
    s.configure(Shares(half_life_s=1e9))
    assert s.next_job("sleep", 440.0).owner == B


def test_running_jobs_count_as_they_run():
    s = Scheduler()
    s.track_running("long", "sleep", A, started_at=0.0)
    s.ledger.charge(B, 0.0, 30.0)
    submit(s, A, 1, 0.0)
    submit(s, B, 1, 1.0)
    assert s.next_job("sleep", 20.0).owner == A  # A's job has run 20 s, B used 30
    assert s.next_job("sleep", 40.0).owner == B  # now A's running job outweighs B's 30 s


def test_priority_orders_only_within_one_user():
    s = Scheduler()
    s.ledger.charge(A, 0.0, 50.0)
    submit(s, A, 1, 1.0, priority=0, prefix="a-low")
    a_high = submit(s, A, 1, 2.0, priority=10, prefix="a-high")[0]
    b_low = submit(s, B, 1, 3.0, priority=-10)[0]
    assert s.next_job("sleep", 60.0).job_id == b_low  # A's high priority does not jump B
    s.start(b_low, 60.0)
    assert s.next_job("sleep", 60.0).job_id == a_high  # within A: high before older normal


def test_user_and_tenant_running_limits_skip_without_blocking():
    s = Scheduler(Shares(user_limits={("t", "a"): Limits(max_running=1)}, tenant_limits={"u": Limits(max_running=2)}))
    d1, d2 = Owner("u", "d1"), Owner("u", "d2")
    submit(s, A, 5, 0.0)
    submit(s, d1, 5, 1.0)
    submit(s, d2, 5, 2.0)
    submit(s, B, 5, 3.0)
    mesh = Cluster(s, {"sleep": 8})
    mesh.fill()
    assert s.running_count(A) == 1
    assert s.running_count(tenant="u") == 2
    assert s.running_count(B) == 5  # the slots the limits leave go to whoever may start
    assert mesh.busy["sleep"] == 8


def test_a_full_type_or_an_owner_at_its_limit_never_holds_back_others():
    s = Scheduler(Shares(user_limits={("t", "a"): Limits(max_running=1)}))
    submit(s, A, 3, 0.0, wf_type="big")  # the oldest jobs, of a type with no free slot
    submit(s, A, 3, 0.0, wf_type="small", prefix="as")
    b_small = submit(s, B, 1, 5.0, wf_type="small")[0]
    mesh = Cluster(s, {"big": 0, "small": 2})
    mesh.fill()
    assert s.running_count(A) == 1 and b_small in mesh.starts  # A at its limit: B takes the other slot
    assert s.next_job("big", 0.0) is None  # A's big jobs wait for its limit only


def test_queued_counts_for_submit_limits():
    s = Scheduler()
    submit(s, A, 3, 0.0)
    submit(s, Owner("t2", "z"), 2, 0.0)
    assert s.queued_count(A) == 3 and s.queued_count(tenant="t") == 3 and s.queued_count() == 5
    s.remove("a0-0")
    assert s.queued_count(A) == 2


def test_no_user_starves_behind_a_steady_stream():
    s = Scheduler()
    s.ledger.charge(A, 0.0, 500.0)  # A has used far more than B
    a_job = submit(s, A, 1, 0.0)[0]
    mesh = Cluster(s, {"sleep": 2})
    for t in range(0, 400):  # B keeps the queue full, one job per second
        submit(s, B, 2, float(t))
        mesh.run_until(float(t))
        if a_job in mesh.starts:
            break
    assert a_job in mesh.starts  # B's usage catches up with A's: A's job gets a slot


def test_simulation_gives_expected_starts_in_dispatch_order():
    s = Scheduler()
    submit(s, A, 8, 0.0)
    s.track_running("r", "sleep", B, started_at=0.0)
    est = simulate(s, {"sleep": 2}, 0.0, runtime=lambda job: 1.0, remaining=lambda run: 0.5)
    starts = sorted(v.start for k, v in est.items() if k != "r")
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert s.queued_count() == 8  # the live scheduler is untouched
    # A newcomer with no usage goes ahead of a heavy user's backlog, though it came later.
    s = Scheduler()
    s.ledger.charge(A, 0.0, 10.0)
    submit(s, A, 4, 0.0)
    s.add(QueuedJob("new", "sleep", C, enqueued_at=10.0))
    est = simulate(s, {"sleep": 1}, 10.0, runtime=lambda job: 1.0, remaining=lambda run: 0.0)
    assert est["new"].start == 10.0
    assert min(v.start for k, v in est.items() if k != "new") == 11.0
    assert simulate(
        s, {"sleep": 1}, 10.0, runtime=lambda job: 1.0, remaining=lambda run: 0.0, stop_at="new"
    ).keys() == {"new"}
    assert simulate(s, {"sleep": 0}, 10.0, runtime=lambda job: 1.0, remaining=lambda run: 0.0) == {}


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="fair, fifo"):
        Scheduler(policy="lottery")


def test_running_aggregates_match_the_sum_over_jobs_and_survive_a_simulation():
    s = Scheduler(Shares(half_life_s=600.0))
    starts = [0.0, 5.0, 17.5, 300.0, 1200.0]
    for i, start in enumerate(starts):
        s.track_running(f"r{i}", "sleep", A if i % 2 else B, started_at=start)
    now = 1500.0
    direct = UsageLedger(600.0)
    assert s.usage(A, now) == pytest.approx(direct.usage(A, now, [5.0, 300.0]), rel=1e-9)
    assert s.tenant_usage("t", now) == pytest.approx(direct.usage(A, now, starts), rel=1e-9)
    before = s.usage(B, now)
    simulate(s, {"sleep": 10}, now, runtime=lambda job: 1.0, remaining=lambda run: 1.0)
    assert s.usage(B, now) == before and s.running_count() == 5
    s.finish("r0", now)
    s.finish("r2", now)
    s.finish("r4", now)
    assert s.running_count(B) == 0 and s.usage(B, now) == pytest.approx(before, rel=1e-9)
    s.configure(Shares(half_life_s=60.0))  # a new half-life re-sums the running jobs
    assert s.usage(A, now) == pytest.approx(UsageLedger(60.0).usage(A, now, [5.0, 300.0]), rel=1e-9)
