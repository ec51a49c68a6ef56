"""The dispatcher: per-type queues, routing to instances, attempts, retries, timeouts, cancel.

One asyncio task per running attempt (``_runner``) consumes the worker's ``Execute`` stream
and turns its events into job events through ``store.append`` (``_consume``) — the only writer
of a running job's events, so terminal states cannot race each other. Queued jobs wait in
per-type queues whose next job the scheduler chooses (``_jobqueue``: fair share by decayed
usage, or FIFO); a type is pumped whenever capacity may have appeared (a job ended, an
instance joined); nothing polls.

Durability: every non-terminal job is driven by the one replica holding its lease
(``_leases``: renewed every few seconds, claimed when free or expired). A gateway that takes over
jobs — after its own restart, or from a replica that died — queues the QUEUED ones and
re-attaches the DISPATCHED/RUNNING ones on their workers with ``Attach(after_seq=worker_seq)``
(``_recovery``), the last worker event seq being stored with each job event, so nothing is
recomputed and no event is stored twice. A stream that breaks after the worker started the job
is re-attached the same way before the attempt counts as lost. A store that stays unavailable
past its retry budget makes the dispatcher let go of the job (nothing half written); its lease
expires and a claim resumes it. Cancel, timeout and delete, on any replica: ``_control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable

from workmesh.services.core.auth import SeriesCapabilities
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._instance import InstanceState
from workmesh.services.gateway.dispatch._attempt import (
    Attempt,
    Pending,
    pending_of,
    utcnow,
)
from workmesh.services.gateway.dispatch._consume import Consumer
from workmesh.services.gateway.dispatch._control import Control
from workmesh.services.gateway.dispatch._fairshare import Scheduler
from workmesh.services.gateway.dispatch._faults import Faults
from workmesh.services.gateway.dispatch._invariants import check_invariants, snapshot
from workmesh.services.gateway.dispatch._jobqueue import JobQueue, type_capacity
from workmesh.services.gateway.dispatch._leases import LeaseKeeper
from workmesh.services.gateway.dispatch._outcomes import EndListener, Outcomes, ProgressRollup
from workmesh.services.gateway.dispatch._policy import (
    DEFAULT_RETRY,
    RetryPolicy,
    choose_instance,
)
from workmesh.services.gateway.dispatch._recovery import Recovery
from workmesh.services.gateway.dispatch._runner import Runner
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.dispatch._versioned import VersionGate
from workmesh.services.gateway.store import JobRecord, JobStore
from workmesh.v1 import common_pb2

log = logging.getLogger("workmesh.gateway.dispatch")

S = common_pb2


class Dispatcher:
    """Routes queued jobs to worker instances and drives every attempt to an outcome.

    Args:
        store: where job events go.
        catalog: the live instances per type (and where instance trouble is reported).
        retry: backoff between attempts after a lost worker or a retryable handler error.
        cancel_grace: seconds a worker gets to stop a cancelled or timed-out job before the
            gateway ends the attempt itself.
        busy_pause: seconds an instance that answered RESOURCE_EXHAUSTED is skipped.
        replica_id: this gateway's lease owner name (unique among replicas on one database).
        lease_seconds: how long a job lease lasts without renewal.
        renew_interval: seconds between lease renewals (and claims of free or expired leases).
        reattach_wait: seconds a taken-over running job waits for its instance to appear in the
            registry before its attempt counts as lost.
        metrics: a ``workmesh.services.core.telemetry.GatewayMetrics`` to update, or None.
        faults: faults to inject at the lease boundary (tests of take-over races), or None.
        scheduler: which queued job gets a free slot (default: fair share, equal shares).
        flush_interval: seconds between writes of usage and finished runtimes to the store.
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel_grace: float = 5.0,
        busy_pause: float = 0.2,
        replica_id: str = "",
        lease_seconds: float = 10.0,
        renew_interval: float = 3.0,
        reattach_wait: float = 10.0,
        metrics=None,
        faults: Faults | None = None,
        scheduler: Scheduler | None = None,
        flush_interval: float = 3.0,
        capabilities: SeriesCapabilities | None = None,
    ) -> None:
        self._store = store
        self._capabilities = capabilities  # auth on: each attempt gets its series write capability
        self._catalog = catalog
        self._cancel_grace = cancel_grace
        self._busy_pause = busy_pause
        self.replica_id = replica_id or f"gateway-{os.getpid()}-{os.urandom(3).hex()}"
        self.lease_seconds = lease_seconds
        self._metrics = metrics
        self._faults = faults or Faults()
        self._renew_interval = renew_interval
        self.queue = JobQueue(scheduler or Scheduler(), capacity=lambda: type_capacity(catalog))
        self._driven = Driven(self.queue)
        self._tasks = SideTasks()
        self._outcomes = Outcomes(store, self._driven, retry=retry, retry_later=self._retry_later, metrics=metrics)
        self._recovery = Recovery(
            store,
            catalog,
            self._driven,
            self._outcomes,
            self._tasks,
            enqueue=self.enqueue,
            drive=self._drive,
            wait=reattach_wait,
        )
        self._waiting = self._recovery.waiting
        self._versions = VersionGate(store, catalog, self._driven, self._outcomes, self._tasks)
        self._control = Control(
            store, catalog, self._driven, self._outcomes, self._waiting, self._tasks, cancel_grace=cancel_grace
        )
        self._leases = LeaseKeeper(
            store,
            self.replica_id,
            lease_seconds=lease_seconds,
            renew_interval=renew_interval,
            owned=self.owned,
            on_claimed=self._recovery.on_claimed,
            on_lost=self._recovery.on_lost,
            on_renewed=self._after_lease_round,
            settling=lambda: self._admitting,
        )
        consumer = Consumer(
            store, catalog, self._outcomes, self._control, self._tasks, metrics=metrics, busy_pause=busy_pause
        )
        self._runner = Runner(
            store,
            catalog,
            self._driven,
            self._outcomes,
            self._control,
            self._tasks,
            self._leases,
            consumer,
            faults=self._faults,
            capabilities=capabilities,
            cancel_grace=cancel_grace,
            lease_seconds=lease_seconds,
            repump=self.repump,
            metrics=metrics,
        )
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task | None = None
        self._stale: set[str] = set()  # types whose next job waits for a fresher lease
        self._admitting: set[str] = set()  # jobs queued here while their create is being stored

    @property
    def gateway_address(self) -> str:
        """host:port of this gateway, sent with attempts for ``ctx.step``."""
        return self._runner.gateway_address

    @gateway_address.setter
    def gateway_address(self, value: str) -> None:
        self._runner.gateway_address = value

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin dispatching; queued jobs move as soon as instances have capacity.

        Also starts keeping leases: jobs left by a previous process of this replica or by a
        replica that died are claimed — queued ones join the queues, running ones are
        re-attached on their workers.
        """
        if not self._driven.started:
            self._driven.started = True
            with contextlib.suppress(Exception):  # a store that is away now: usage starts at zero
                await asyncio.wait_for(self.queue.load(self._store), 10.0)
            self._flusher = asyncio.get_running_loop().create_task(
                self.queue.flush_every(self._store, self._flush_interval), name="gateway-usage"
            )
            self._catalog.add_listener(self._on_capacity)
            queued = self.queue.ids()
            for job in self._driven.pending.values():
                if job.job_id in queued:
                    self._versions.queued(job)
            self._on_capacity(self.queue.types())
            await self._leases.start()

    async def stop(self) -> None:
        """Stop dispatching, abandon running attempts (their jobs stay non-terminal and keep
        running on their workers) and release their leases so another replica takes over."""
        self._driven.started = False
        owned = self.owned()
        await self._leases.stop(release=False)
        self._waiting.clear()
        self._versions.stop()
        for job in self._driven.pending.values():
            if job.timer is not None:
                job.timer.cancel()
        tasks = [a.task for a in self._driven.running.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        await asyncio.gather(*tasks, *self._tasks.pending(), *filter(None, [self._flusher]), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.queue.flush(self._store), 2.0)
        # Bounded: with the database away the leases simply expire.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._store.release(self.replica_id, owned), 2.0)

    def owned(self) -> list[str]:
        """Ids of the jobs this dispatcher drives (queued, backing off, running, re-attaching)."""
        return [*self._driven.pending, *self._driven.running, *self._waiting.ids()]

    def owns(self, job_id: str) -> bool:
        """Whether this dispatcher drives the job."""
        return self._recovery.owns(job_id)

    # -- intake ------------------------------------------------------------------------------
    def driving(self, job_id: str) -> bool:
        """Whether this dispatcher still holds the job (queued here, or an attempt winding down)."""
        return job_id in self._driven.pending or job_id in self._driven.running

    def enqueue(self, record: JobRecord) -> None:
        """Queue a stored, non-terminal job for dispatch (after submit, or on recovery).

        A job this dispatcher already owns is left alone; one whose ``not_before`` lies in the
        future joins its queue then.
        """
        if record.job_id in self._driven.pending or record.job_id in self._driven.running:
            return
        job = pending_of(record)
        delay = (record.not_before - utcnow()).total_seconds() if record.not_before is not None else 0.0
        if delay > 0:
            self._retry_later(job, delay)
            return
        self._driven.pending[job.job_id] = job
        self.queue.push(job)
        if self._driven.started:
            self._versions.queued(job)
            self._pump(job.workflow_type)

    def _retry_later(self, job: Pending, delay: float) -> None:
        # Driven here meanwhile (its lease is renewed), queued once the delay is over.
        self._driven.pending[job.job_id] = job
        job.timer = asyncio.get_running_loop().call_later(delay, self._after_backoff, job)

    def _after_backoff(self, job: Pending) -> None:
        job.timer = None
        job.ready_at = time.monotonic()
        if not job.cancelled and self._driven.pending.get(job.job_id) is job:
            self.queue.push(job)
            if self._driven.started:
                self._versions.queued(job)
                self._pump(job.workflow_type)

    async def admit(self, record: JobRecord, leased_at: float, *, fresh: bool = False) -> tuple[JobRecord, bool]:
        """Store a new job and queue it for dispatch (:meth:`submitted`). One without an
        idempotency key, with a new id (``new_job_id``), is queued before its create commits: an
        attempt begun at once records its dispatch right behind the create (on SQLite in the
        same transaction) and goes to its worker once both are stored. A failed create drops it.

        `fresh`: a key expected to be new (a step's first ask) is queued early alike; a key found
        taken drops it as a failed create would (its id never stored: never sent to a worker).
        """
        job_id = record.job_id
        if (record.idempotency_key and not fresh) or self.driving(job_id) or job_id in self._admitting:
            stored, created = await self._store.create(record)  # the key may be taken: create first
            if created:
                self.submitted(stored, leased_at)
            return stored, created
        create = asyncio.ensure_future(self._store.create(record))
        self._admitting.add(job_id)

        def settled(done: asyncio.Future) -> None:
            self._admitting.discard(job_id)
            if done.cancelled() or done.exception() is not None or not done.result()[1]:
                self._driven.drop(job_id)  # not stored: an attempt begun fails its record alike

        create.add_done_callback(settled)
        self.submitted(record, leased_at)
        return await asyncio.shield(create)  # stored (and driven) even if the caller goes away

    def submitted(self, record: JobRecord, leased_at: float | None = None) -> None:
        """Queue a job just created (leased to this replica) for dispatch.

        Args:
            record: the stored job.
            leased_at: monotonic time taken before its lease was computed (now if None).
        """
        self._leases.granted(record.job_id, time.monotonic() if leased_at is None else leased_at)
        self._outcomes.transition(S.JOB_STATUS_QUEUED, record.workflow_type)
        self.enqueue(record)

    def follow_rollups(self, rollup: ProgressRollup) -> None:
        """Tell `rollup` of each job's own progress; a roll-up still due goes out with the end."""
        self._outcomes.rollup = rollup

    def follow_ends(self, listener: EndListener) -> None:
        """Tell `listener` of each job's terminal write (RunStep answers a step from memory)."""
        self._outcomes.ends = listener

    def observe(self, metrics) -> None:
        """Feed the gauges of a GatewayMetrics from this dispatcher's in-memory state."""
        metrics.observe_queue_depth(self.queue.depths)
        metrics.observe_tenant_shares(self.queue.tenant_shares)
        metrics.observe_in_flight(lambda: {i.name: i.in_flight for i in self._catalog.instances()})
        metrics.observe_jobs(
            lambda: {S.JOB_STATUS_QUEUED: len(self._driven.pending), S.JOB_STATUS_RUNNING: len(self._driven.running)}
        )

    async def check_invariants(self):
        """The self-check (``GatewayAdmin.CheckInvariants``): leases only on jobs driven here,
        capacity slots only for live attempts, and no job driven here without a way forward."""
        leased = getattr(self._store, "leased", None)
        return await check_invariants(
            self.replica_id,
            lambda: snapshot(self._driven, self._catalog, self.owned()),
            None if leased is None else lambda: leased(self.replica_id),
            settle=2 * self._renew_interval + 1.0,
        )

    async def cancel(self, job_id: str, reason: str = "") -> JobRecord:
        """Cancel a job (see :meth:`Control.cancel`)."""
        return await self._control.cancel(job_id, reason)

    async def delete(self, job_id: str, delete_series: Callable[[str], Awaitable[object]] | None = None) -> bool:
        """Delete a job with its events (see :meth:`Control.delete`)."""
        return await self._control.delete(job_id, delete_series)

    def waiting(self, job_id: str) -> str:
        """Why a job queued here cannot start at its turn (no live instance serves its version),
        or "" (it waits for a free slot only, or is not queued here)."""
        return self._versions.waiting(job_id)

    def queued(self, workflow_type: str | None = None) -> int:
        """How many jobs wait for an instance (of one type, or of all)."""
        return self.queue.queued(workflow_type)

    def repump(self) -> None:
        """Offer free slots again (e.g. after new shares lifted a limit)."""
        self._on_capacity(self.queue.types())

    def _on_capacity(self, names) -> None:
        if self._driven.started:
            # Re-attachments first: their jobs already occupy worker slots.
            self._waiting.resolve()
            self._versions.recheck()
            for name in names:
                self._pump(name)

    def _pump(self, workflow_type: str) -> None:
        # The scheduler picks the job: a job that may not start now (its owner is at a running
        # limit) is passed over, never waited for.
        # A free instance first: it is cheaper to find than the job, and usually there is none.
        candidates = self._catalog.instances_of(workflow_type)
        held: list = []  # jobs no free instance may run (by version): out of this pass only
        try:
            while (inst := choose_instance(candidates)) is not None:
                job = self.queue.peek(workflow_type)
                if job is None:
                    return
                if job.requirement:
                    inst = choose_instance(self._versions.matching(job, workflow_type, candidates))
                    if inst is None:
                        held.append((self.queue.hold(job), job))
                        continue
                self._faults.at_dispatch(job.job_id)
                # At most once: dispatch only under a lease that surely lasts until the dispatch is
                # recorded and the worker has the job — else another replica may take the job over
                # meanwhile and run it too. A stale lease waits for the next renewal (which also
                # tells whether the job is still ours).
                if not self._leases.fresh(job.job_id):
                    self._stale.add(workflow_type)
                    self._leases.poke()
                    return
                self.queue.take(job)
                self._driven.pending.pop(job.job_id, None)
                self._versions.started(job.job_id)
                if self._metrics is not None:
                    self._metrics.queue_wait(time.monotonic() - job.ready_at, job.owner.tenant, workflow_type)
                self._launch(job, inst)
        finally:
            for entry, job in held:
                self.queue.unhold(entry)
                self._versions.held(job, workflow_type)

    def _after_lease_round(self) -> None:
        stale, self._stale = self._stale, set()
        if stale:
            self._on_capacity(stale)

    def _launch(self, job: Pending, inst: InstanceState) -> None:
        job.attempts += 1
        self._drive(Attempt(job, inst))

    def _drive(self, a: Attempt) -> None:
        # The slot, the attempt and its task come together: whatever the job carries, the
        # task's cleanup gives the slot back and the job an outcome (see _run_attempt).
        a.inst.in_flight += 1
        self._driven.running[a.job.job_id] = a
        if not a.resumed:
            self._runner.begin(a)  # now: a create still queued shares the dispatch record's commit
        a.task = asyncio.get_running_loop().create_task(self._runner.run(a))
