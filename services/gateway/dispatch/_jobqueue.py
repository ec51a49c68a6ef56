"""The dispatcher's queued jobs: a :class:`Scheduler` over ``Pending`` jobs, plus what it learns.

The dispatcher asks :meth:`JobQueue.peek` for the next job of a type whenever an instance may
have a free slot, :meth:`take` once it placed it, and :meth:`ended` when the attempt is over.
Everything else — owners, priorities, usage, limits, runtime estimates, expected starts — stays
here, so the dispatcher's own code only changes where the next queued job is chosen.

Durable state: the creation time of each job orders it (the queue order survives a restart:
recovered jobs are re-queued with their stored ``created_at``); usage and finished runtimes are
written to the job store by :meth:`flush` (periodically and at stop) when the store offers
``add_usage``/``add_runtimes``, and read back by :meth:`load`. Replicas on one database add
their charges to the same usage rows and reload the sum, so they order owners alike.

Owners and priorities come from reserved job labels (``workmesh.tenant``, ``workmesh.user``,
``workmesh.priority``), set by SubmitJob from the request's declared ``tenant``/``user``/
``priority`` — the place where authenticated identity will set them instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.dispatch._estimate import Estimate, RuntimeModel
from workmesh.services.gateway.dispatch._fairshare import Owner, QueuedJob, RunningJob, Scheduler
from workmesh.services.gateway.dispatch._queue_sim import Simulated, simulate

__all__ = [
    "PRIORITY_LABEL",
    "TENANT_LABEL",
    "USER_LABEL",
    "JobQueue",
    "numeric_params",
    "owner_of",
    "priority_of",
    "type_capacity",
]

log = logging.getLogger("workmesh.gateway.queue")

TENANT_LABEL = "workmesh.tenant"
USER_LABEL = "workmesh.user"
PRIORITY_LABEL = "workmesh.priority"
PLACE_TTL_S = 1.0  # how long one queue simulation answers GetJob/ListJobs
# When a simulation ran, its result per job, and each queued job's position within its type.
_Places = tuple[float, dict[str, Simulated], dict[str, int]]
MIN_REMAINING_S = 0.05
UNKNOWN_RUNTIME_S = 1.0  # stands in for a type with no history: orders the simulation only


def owner_of(labels: Mapping[str, str]) -> Owner:
    """The owner a job is accounted to, from its labels."""
    return Owner(labels.get(TENANT_LABEL, ""), labels.get(USER_LABEL, ""))


def priority_of(labels: Mapping[str, str]) -> int:
    """The job's priority within its owner (stored already validated)."""
    try:
        return int(labels.get(PRIORITY_LABEL, "0") or 0)
    except ValueError:
        return 0


def numeric_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The int and float values of a ``ParamValue`` map (what runtimes are fitted against)."""
    out: dict[str, float] = {}
    for name, value in params.items():
        kind = value.WhichOneof("kind")
        if kind == "int_value":
            out[name] = float(value.int_value)
        elif kind == "float_value":
            out[name] = float(value.float_value)
        elif kind == "duration_value":
            out[name] = value.duration_value.seconds + value.duration_value.nanos / 1e9
    return out


def type_capacity(catalog: Any) -> dict[str, int]:
    """Slots per type over the catalog's available instances (a process serving several types
    counts fully for each: an upper bound)."""
    return {name: sum(i.capacity for i in catalog.instances_of(name) if i.available) for name in catalog.type_names()}


class JobQueue:
    """Queued jobs of one dispatcher, ordered by its scheduler.

    Args:
        scheduler: the policy (fair share or FIFO) with its shares.
        model: the runtime model that finished jobs feed and estimates come from.
        capacity: ``() -> {type: slots}`` over the live instances (for expected starts).
        clock: wall-clock seconds (usage is persisted and shared between replicas in it).
    """

    def __init__(
        self,
        scheduler: Scheduler,
        model: RuntimeModel | None = None,
        *,
        capacity: Callable[[], Mapping[str, int]] = dict,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scheduler = scheduler
        self.model = model or RuntimeModel()
        self._capacity = capacity
        self._clock = clock
        self._jobs: dict[str, Any] = {}  # queued job id -> Pending
        self._running: dict[str, Any] = {}  # running job id -> Pending
        self._charges: dict[Owner, tuple[float, float]] = {}  # not yet flushed: owner -> (ws, at)
        self._runtimes: list[tuple[str, str, dict[str, float], float, float]] = []
        self._estimates: dict[str, float] = {}  # job id -> estimated runtime (s), while known here
        self._places: _Places | None = None
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` whenever a job is queued, starts, ends or leaves the queue."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        self._places = None
        for listener in self._listeners:
            listener()

    def now(self) -> float:
        """The queue's clock (wall-clock seconds)."""
        return self._clock()

    def capacity(self) -> Mapping[str, int]:
        """Slots per type on the live instances."""
        return self._capacity()

    # -- the dispatcher's side ----------------------------------------------------------------
    def push(self, job: Any) -> None:
        """Queue a ``Pending`` job (again, after a retry backoff)."""
        if job.job_id in self._running:  # a retry queued before its attempt was accounted
            self.ended(job.job_id)
        self._jobs[job.job_id] = job
        self.scheduler.add(QueuedJob(job.job_id, job.workflow_type, job.owner, job.priority, job.enqueued_at))
        self._changed()

    def peek(self, workflow_type: str) -> Any | None:
        """The job that should get the next free slot of the type, or None (nothing may start)."""
        while True:
            chosen = self.scheduler.next_job(workflow_type, self._clock())
            if chosen is None:
                return None
            job = self._jobs.get(chosen.job_id)
            if job is not None and not job.cancelled:
                return job
            self.discard(chosen.job_id)

    def take(self, job: Any) -> None:
        """The job `peek` returned was placed on an instance: it runs (and accrues usage) now."""
        self.scheduler.start(job.job_id, self._clock())
        self._jobs.pop(job.job_id, None)
        self._running[job.job_id] = job
        self._changed()

    def hold(self, job: Any) -> Any:
        """Take a queued job out of the scheduler's choice for one dispatch pass (no instance
        serving a version it may run on has a slot); give the returned entry to :meth:`unhold`
        before the pass ends. It stays queued (``ids``, places) meanwhile."""
        return self.scheduler.remove(job.job_id)

    def unhold(self, entry: Any) -> None:
        """Put an entry from :meth:`hold` back, in its place (order is by creation time)."""
        if entry is not None and entry.job_id in self._jobs:
            self.scheduler.add(entry)

    def discard(self, job_id: str) -> None:
        """Forget a queued job (cancelled, deleted, given up)."""
        self.scheduler.remove(job_id)
        self._jobs.pop(job_id, None)
        self._changed()

    def track(self, job: Any, started_at: float) -> None:
        """Count a re-attached job as running since `started_at` (wall-clock seconds)."""
        self.scheduler.track_running(job.job_id, job.workflow_type, job.owner, started_at)
        self._running[job.job_id] = job

    def ended(self, job_id: str, *, succeeded: bool = False, version: str = "") -> None:
        """The job's attempt is over: charge its worker-seconds; learn its runtime if it succeeded."""
        job = self._running.pop(job_id, None)
        now = self._clock()
        run = self.scheduler.finish(job_id, now)
        self._estimates.pop(job_id, None)
        self._changed()
        if run is None:
            return
        worked = now - run.started_at
        value, _ = self._charges.get(run.owner, (0.0, now))
        # Flushed within seconds: decay between charges is negligible next to the half-life.
        self._charges[run.owner] = (value + self.scheduler.ledger.worked(run.started_at, now), now)
        if succeeded and job is not None and worked > 0:
            params = numeric_params(job.request.params)
            self.model.add(run.workflow_type, version, params, worked)
            self._runtimes.append((run.workflow_type, version, params, worked, now))

    def ids(self) -> set[str]:
        """Ids of the queued jobs (those the scheduler may choose)."""
        return set(self._jobs)

    def queued(self, workflow_type: str | None = None) -> int:
        return len(self.scheduler.queued_jobs(workflow_type)) if workflow_type else len(self._jobs)

    def depths(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self._jobs.values():
            out[job.workflow_type] = out.get(job.workflow_type, 0) + 1
        return out

    def types(self) -> list[str]:
        return self.scheduler.types()

    def tenant_shares(self) -> dict[str, float]:
        """Each tenant's fraction of the decayed usage of all (the share it received)."""
        now = self._clock()
        usage: dict[str, float] = {}
        for owner in self.scheduler.owners():
            usage[owner.tenant] = usage.get(owner.tenant, 0.0) + self.scheduler.usage(owner, now)
        total = sum(usage.values())
        return {t: u / total for t, u in usage.items()} if total > 0 else {}

    # -- estimates -----------------------------------------------------------------------------
    def runtime_of(self, job_id: str, workflow_type: str, version: str, params: Mapping[str, Any]) -> float | None:
        """Estimated runtime (p50, seconds) of a job; cached per job id."""
        cached = self._estimates.get(job_id)
        if cached is None:
            est = self.model.estimate(workflow_type, version, numeric_params(params))
            if est.p50_s is None:
                return None
            cached = self._estimates[job_id] = est.p50_s
        return cached

    def _sim_runtime(self, versions: Mapping[str, str] | None) -> tuple[Callable, Callable]:
        versions = versions or {}

        def job_runtime(job_id: str, workflow_type: str) -> float:
            job = self._jobs.get(job_id) or self._running.get(job_id)
            params = job.request.params if job is not None else {}
            est = self.runtime_of(job_id, workflow_type, versions.get(workflow_type, ""), params)
            return est if est is not None else self.model.typical(workflow_type).p50_s or UNKNOWN_RUNTIME_S

        def queued(job: QueuedJob) -> float:
            return job_runtime(job.job_id, job.workflow_type)

        def remaining(run: RunningJob) -> float:
            return max(job_runtime(run.job_id, run.workflow_type) - (self._clock() - run.started_at), MIN_REMAINING_S)

        return queued, remaining

    def _simulate_places(self, versions: Mapping[str, str] | None, stop_at: str | None) -> _Places:
        runtime, remaining = self._sim_runtime(versions)
        now = self._clock()
        sim = simulate(self.scheduler, self._capacity(), now, runtime=runtime, remaining=remaining, stop_at=stop_at)
        positions: dict[str, int] = {}
        per_type: dict[str, int] = {}
        for jid, _ in sorted(((j, s) for j, s in sim.items() if j in self._jobs), key=lambda p: p[1].start):
            t = self._jobs[jid].workflow_type
            per_type[t] = per_type.get(t, 0) + 1
            positions[jid] = per_type[t]
        self._places = (now, sim, positions)
        return self._places

    def place(self, job_id: str, versions: Mapping[str, str] | None = None) -> tuple[int, int, float | None] | None:
        """(position within its type, queued of its type, expected start) of a queued job here."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        places = self._places
        if places is None or self._clock() - places[0] > PLACE_TTL_S or job_id not in places[1]:
            # Simulated up to this job only: a page of ListJobs asks newest first, so the deepest
            # job of the page comes first and the others are answered from the same run.
            places = self._simulate_places(versions, job_id)
        return self._answer(job_id, job, places)

    def places(
        self, job_ids: Iterable[str], versions: Mapping[str, str] | None = None
    ) -> dict[str, tuple[int, int, float | None]]:
        """:meth:`place` of each of `job_ids` that is queued here, from one simulation at most."""
        queued = [j for j in job_ids if j in self._jobs]
        places = self._places
        fresh = places is not None and self._clock() - places[0] <= PLACE_TTL_S
        if queued and (places is None or not (fresh and all(j in places[1] for j in queued))):
            places = self._simulate_places(versions, None)
        if places is None:  # nothing queued here
            return {}
        return {j: self._answer(j, self._jobs[j], places) for j in queued}

    def _answer(self, job_id: str, job: Any, places: _Places) -> tuple[int, int, float | None]:
        _, sim, positions = places
        queued = self.queued(job.workflow_type)
        position = positions.get(job_id, queued)
        start = sim.get(job_id)
        # A type that never finished a job has no runtimes to simulate with: order only.
        if start is None or not self.model.typical(job.workflow_type).known:
            return position, queued, None
        return position, queued, start.start

    def estimate_start(
        self, probe: QueuedJob, runtime_s: float | None, versions: Mapping[str, str] | None = None
    ) -> tuple[float | None, int]:
        """Expected start of a job not submitted yet, and its position among its type's queue."""
        scheduler = self.scheduler.clone()
        scheduler.add(probe)
        runtime, remaining = self._sim_runtime(versions)

        def probe_runtime(job: QueuedJob) -> float:
            return (runtime_s or 0.0) if job.job_id == probe.job_id else runtime(job)

        sim = simulate(
            scheduler, self._capacity(), self._clock(), runtime=probe_runtime, remaining=remaining, stop_at=probe.job_id
        )
        mine = sim.get(probe.job_id)
        if mine is None:
            return None, self.queued(probe.workflow_type) + 1
        known = runtime_s is not None and self.model.typical(probe.workflow_type).known
        ahead = sum(
            1
            for j, s in sim.items()
            if j in self._jobs
            and self._jobs[j].workflow_type == probe.workflow_type
            and s.start <= mine.start
            and j != probe.job_id
        )
        return (mine.start if known else None), ahead + 1

    def estimate(self, workflow_type: str, version: str, params: Mapping[str, Any]) -> Estimate:
        return self.model.estimate(workflow_type, version, numeric_params(params))

    # -- durability -------------------------------------------------------------------------------
    async def load(self, store: Any, runtimes_limit: int = 50_000) -> None:
        """Read the shared usage and the finished runtimes (stores without them: nothing)."""
        load_usage = getattr(store, "load_usage", None)
        if load_usage is not None:
            self.scheduler.ledger.load(await load_usage())
        load_runtimes = getattr(store, "load_runtimes", None)
        if load_runtimes is not None:
            for wf_type, version, params, runtime_s in await load_runtimes(runtimes_limit):
                self.model.add(wf_type, version, params, runtime_s)

    async def flush(self, store: Any) -> None:
        """Write the charges and runtimes since the last flush; reload the shared usage.

        A failed write keeps them for the next flush.
        """
        add_usage = getattr(store, "add_usage", None)
        if add_usage is None:
            return
        charges, self._charges = self._charges, {}
        try:
            usage = await add_usage(charges, self.scheduler.shares.half_life_s)
        except Exception:
            for owner, (value, at) in charges.items():
                old, old_at = self._charges.get(owner, (0.0, at))
                self._charges[owner] = (old + value, max(at, old_at))
            raise
        runtimes, self._runtimes = self._runtimes, []
        try:
            if runtimes:
                await store.add_runtimes(runtimes)
        except Exception:
            self._runtimes[:0] = runtimes  # the usage is stored: only these wait for the next flush
            raise
        finally:
            self._reload(usage)

    async def flush_every(self, store: Any, interval: float) -> None:
        """:meth:`flush` every `interval` seconds, for ever (the dispatcher's task)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush(store)
            except WorkmeshError as exc:  # store away for now: the charges wait for the next flush
                log.warning("could not store usage: %s", exc)
            except Exception:
                log.exception("could not store usage")

    def _reload(self, usage: Mapping[Owner, tuple[float, float]]) -> None:
        # The shared sum, plus what ended here meanwhile (not flushed yet).
        self.scheduler.ledger.load(usage)
        for owner, (value, at) in self._charges.items():
            self.scheduler.ledger.add(owner, value, at)
