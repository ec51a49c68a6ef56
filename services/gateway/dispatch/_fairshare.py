"""The scheduler as a pure state machine: which queued job gets the next free slot of a type.

No I/O and no clock of its own: every call that depends on time takes ``now`` (seconds, any
monotonic origin), so tests drive it with a fake clock and the queue simulation behind
``EstimateJob`` runs the very same code on simulated time.

Fair share (``policy="fair"``), as Slurm's fair-share factor and Kueue's admission fair sharing:
an owner's *usage* is the worker-seconds its jobs consumed, running jobs counting as they run,
decayed exponentially with a half-life. A free slot of type T goes, among the owners with a
queued job of type T that may start now,

1. to the tenant with the lowest usage / tenant weight (a tenant's usage is its users' sum),
2. within it, to the user with the lowest usage / user weight (users equal by default),
3. within that user, to the job with the highest priority, then the oldest.

Priority never crosses owners. Ties (e.g. several owners at zero usage when slots free up at
once) go to fewer running jobs per weight, then to the oldest queued job. Work-conserving: a slot
stays empty only when no queued job of its type may start. No head-of-line blocking: an owner
at its running limit is skipped, never waited for, and each type is chosen from independently.

``policy="fifo"`` keeps today's order (oldest queued job of the type first); limits apply to
both policies.
"""

from __future__ import annotations

import heapq
from typing import TypeVar

from workmesh.services.gateway.dispatch._sched_model import (
    DEFAULT_HALF_LIFE_S,
    Limits,
    Owner,
    QueuedJob,
    RunningJob,
    Shares,
)
from workmesh.services.gateway.dispatch._usage import RunningWork, UsageLedger

__all__ = [
    "DEFAULT_HALF_LIFE_S",
    "POLICIES",
    "Limits",
    "Owner",
    "QueuedJob",
    "RunningJob",
    "Scheduler",
    "Shares",
    "UsageLedger",
]

POLICIES = ("fair", "fifo")
_K = TypeVar("_K")


class Scheduler:
    """Queued and running jobs of one gateway and the choice of the next job per free slot.

    Args:
        shares: weights, limits and the usage half-life.
        policy: ``"fair"`` or ``"fifo"``.
    """

    def __init__(self, shares: Shares | None = None, policy: str = "fair") -> None:
        if policy not in POLICIES:
            raise ValueError(f"scheduler policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.policy = policy
        self._fifo = policy == "fifo"
        self.shares = shares or Shares()
        self.ledger = UsageLedger(self.shares.half_life_s)
        # type -> owner -> heap of (order key, job)
        self._queues: dict[str, dict[Owner, list[tuple[tuple, QueuedJob]]]] = {}
        self._queued: dict[str, QueuedJob] = {}
        self._running: dict[str, RunningJob] = {}
        self._running_by_owner: dict[Owner, dict[str, float]] = {}
        self._queued_by_owner: dict[Owner, int] = {}
        self._queued_by_tenant: dict[str, int] = {}
        self._agg: dict[object, RunningWork] = {}  # Owner or tenant name -> its running jobs

    def clone(self) -> Scheduler:
        """An independent copy (jobs are immutable and shared), e.g. to simulate the queue."""
        other = Scheduler.__new__(Scheduler)
        other.policy, other._fifo, other.shares = self.policy, self._fifo, self.shares
        other.ledger = UsageLedger(self.ledger.half_life_s)
        other.ledger.load(self.ledger.entries())
        other._queues = {t: {o: list(h) for o, h in owners.items()} for t, owners in self._queues.items()}
        other._queued = dict(self._queued)
        other._running = dict(self._running)
        other._running_by_owner = {o: dict(r) for o, r in self._running_by_owner.items()}
        other._queued_by_owner = dict(self._queued_by_owner)
        other._queued_by_tenant = dict(self._queued_by_tenant)
        other._agg = {}
        for k, a in self._agg.items():
            copy = other._agg[k] = RunningWork()
            copy.n, copy.ref, copy.total = a.n, a.ref, a.total
        return other

    # -- configuration -------------------------------------------------------------------
    def configure(self, shares: Shares) -> None:
        """Use new weights and limits from now on (usage is kept)."""
        self.shares = shares
        if shares.half_life_s != self.ledger.half_life_s:
            self.ledger.half_life_s = shares.half_life_s
            self._agg = {}
            for run in self._running.values():
                self._count_running(run, 1)

    # -- state changes ----------------------------------------------------------------------
    def add(self, job: QueuedJob) -> None:
        """Queue a job (a job already queued or running is left as it is)."""
        if job.job_id in self._queued or job.job_id in self._running:
            return
        self._queued[job.job_id] = job
        heap = self._queues.setdefault(job.workflow_type, {}).setdefault(job.owner, [])
        heapq.heappush(heap, (job.order_key(self._fifo), job))
        self._count_queued(job.owner, 1)

    def remove(self, job_id: str) -> QueuedJob | None:
        """Take a job out of its queue (cancelled, deleted, given up); None if not queued."""
        job = self._queued.pop(job_id, None)
        if job is None:
            return None
        owners = self._queues[job.workflow_type]
        heap = owners[job.owner]
        if heap[0][1] is job:  # the usual case: the job next_job chose is starting
            heapq.heappop(heap)
        else:  # cancelled or deleted while queued: rarer, O(n)
            heap.remove((job.order_key(self._fifo), job))
            heapq.heapify(heap)
        if not heap:
            del owners[job.owner]
        self._count_queued(job.owner, -1)
        return job

    def start(self, job_id: str, now: float) -> RunningJob:
        """Move a queued job to running at `now` (after :meth:`next_job` chose it)."""
        job = self.remove(job_id)
        if job is None:
            raise KeyError(job_id)
        return self.track_running(job.job_id, job.workflow_type, job.owner, now)

    def track_running(self, job_id: str, workflow_type: str, owner: Owner, started_at: float) -> RunningJob:
        """Count a job as running since `started_at` (e.g. one re-attached after a restart)."""
        run = RunningJob(job_id, workflow_type, owner, started_at)
        self._running[job_id] = run
        self._running_by_owner.setdefault(owner, {})[job_id] = started_at
        self._count_running(run, 1)
        return run

    def _count_running(self, run: RunningJob, sign: int) -> None:
        h = self.ledger.half_life_s
        for key in (run.owner, run.owner.tenant):
            agg = self._agg.get(key)
            if agg is None:
                agg = self._agg[key] = RunningWork()
            agg.add(run.started_at, h, sign)
            if agg.n == 0:
                del self._agg[key]

    def finish(self, job_id: str, now: float) -> RunningJob | None:
        """A running job ended at `now`: its worker-seconds become the owner's usage."""
        run = self._running.pop(job_id, None)
        if run is None:
            return None
        mine = self._running_by_owner[run.owner]
        del mine[job_id]
        if not mine:
            del self._running_by_owner[run.owner]
        self._count_running(run, -1)
        self.ledger.charge(run.owner, run.started_at, now)
        return run

    def _count_queued(self, owner: Owner, delta: int) -> None:
        _add(self._queued_by_owner, owner, delta)
        _add(self._queued_by_tenant, owner.tenant, delta)

    # -- reading ----------------------------------------------------------------------------
    def queued_jobs(self, workflow_type: str | None = None) -> list[QueuedJob]:
        """Queued jobs (of one type or all), in no particular order."""
        return [j for j in self._queued.values() if workflow_type is None or j.workflow_type == workflow_type]

    def running_jobs(self) -> list[RunningJob]:
        return list(self._running.values())

    def is_queued(self, job_id: str) -> bool:
        return job_id in self._queued

    def types(self) -> list[str]:
        """Types with queued jobs."""
        return [t for t, owners in self._queues.items() if owners]

    def queued_count(self, owner: Owner | None = None, tenant: str | None = None) -> int:
        """Queued jobs of one owner, of one tenant, or of all."""
        if owner is not None:
            return self._queued_by_owner.get(owner, 0)
        if tenant is not None:
            return self._queued_by_tenant.get(tenant, 0)
        return len(self._queued)

    def running_count(self, owner: Owner | None = None, tenant: str | None = None) -> int:
        """Running jobs of one owner, of one tenant, or of all."""
        key = owner if owner is not None else tenant
        if key is not None:
            agg = self._agg.get(key)
            return agg.n if agg is not None else 0
        return len(self._running)

    def owners(self) -> set[Owner]:
        """Every owner with queued or running jobs or recorded usage."""
        return {*self._queued_by_owner, *self._running_by_owner, *self.ledger.entries()}

    def usage(self, owner: Owner, now: float) -> float:
        """The owner's decayed worker-seconds at `now`, running jobs included."""
        return self.ledger.usage(owner, now) + self._running_work(owner, now)

    def tenant_usage(self, tenant: str, now: float) -> float:
        """The sum of the tenant's users' usage at `now`."""
        return self.ledger.tenant_usage(tenant, now) + self._running_work(tenant, now)

    def _running_work(self, key: object, now: float) -> float:
        agg = self._agg.get(key)
        return agg.work(now, self.ledger.half_life_s) if agg is not None else 0.0

    def may_start(self, owner: Owner) -> bool:
        """Whether the owner is below its own and its tenant's running limits."""
        cap = self.shares.user_limit(owner).max_running
        if cap is not None and self.running_count(owner) >= cap:
            return False
        cap = self.shares.tenant_limit(owner.tenant).max_running
        return cap is None or self.running_count(tenant=owner.tenant) < cap

    # -- the decision -------------------------------------------------------------------------
    def next_job(self, workflow_type: str, now: float) -> QueuedJob | None:
        """The queued job of `workflow_type` that gets a slot free at `now`, or None.

        Does not change anything; call :meth:`start` with the job once it is placed.
        """
        owners = self._queues.get(workflow_type)
        if not owners:
            return None
        # Without running limits every owner may start: no per-owner check per decision.
        eligible = [o for o in owners if self.may_start(o)] if self.shares.limited else list(owners)
        if not eligible:
            return None
        if len(eligible) == 1:  # the common case of a burst: nothing to weigh
            return owners[eligible[0]][0][1]
        if self._fifo:
            return min((owners[o][0] for o in eligible), key=lambda entry: entry[0])[1]
        return owners[self._fair_owner(eligible, owners, now)][0][1]

    def _fair_owner(self, eligible: list[Owner], owners: dict, now: float) -> Owner:
        # Runs once per decision over every eligible owner: usage is read from the ledger's and
        # the running aggregates' tables directly (the same sums as usage()/tenant_usage()).
        shares, ledger, agg = self.shares, self.ledger, self._agg
        h = ledger.half_life_s
        done, done_by_tenant, value = ledger._done, ledger._tenants, ledger._value
        tenants: dict[str, tuple[float, float]] = {}

        def key(o: Owner) -> tuple:
            t = tenants.get(o.tenant)
            if t is None:
                tw = shares.tenant_weight(o.tenant)
                run = agg.get(o.tenant)
                used = value(done_by_tenant.get(o.tenant), now) + (run.work(now, h) if run is not None else 0.0)
                t = tenants[o.tenant] = (used / tw, (run.n if run is not None else 0) / tw)
            uw = shares.user_weight(o)
            run = agg.get(o)
            used = value(done.get(o), now) + (run.work(now, h) if run is not None else 0.0)
            head = owners[o][0][1]
            return (*t, used / uw, (run.n if run is not None else 0) / uw, head.enqueued_at, head.seq)

        # One pass: the tenant part of the key orders tenants, the user part users within one.
        return min(eligible, key=key)


def _add(counts: dict[_K, int], key: _K, delta: int) -> None:
    """Add `delta` to a count, dropping it at zero."""
    n = counts.get(key, 0) + delta
    if n:
        counts[key] = n
    else:
        counts.pop(key, None)
