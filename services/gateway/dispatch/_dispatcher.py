"""The dispatcher: per-type queues, routing to instances, attempts, retries, timeouts, cancel.

One asyncio task per running attempt consumes the worker's ``Execute`` stream and turns its
events into job events through ``store.append`` — the only writer of a running job's events, so
terminal states cannot race each other. Queued jobs wait in per-type queues whose next job the
scheduler chooses (``_jobqueue``: fair share by decayed usage, or FIFO); a type is pumped
whenever capacity may have appeared (a job ended, an instance joined); nothing polls.

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
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable

import grpc

from workmesh.services.core.auth import SeriesCapabilities
from workmesh.services.core.errors import (
    WORKER_DRAINING,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
    WorkmeshError,
)
from workmesh.services.core.outcome import Outcome
from workmesh.services.core.telemetry import end_span
from workmesh.services.gateway.discovery._catalog import Catalog, InstanceState
from workmesh.services.gateway.dispatch._attempt import (
    Attempt,
    Lost,
    Pending,
    open_attempt_span,
    pending_of,
    status_event,
    utcnow,
)
from workmesh.services.gateway.dispatch._control import Control
from workmesh.services.gateway.dispatch._fairshare import Scheduler
from workmesh.services.gateway.dispatch._faults import Faults
from workmesh.services.gateway.dispatch._invariants import Snapshot, check_invariants
from workmesh.services.gateway.dispatch._jobqueue import JobQueue, type_capacity
from workmesh.services.gateway.dispatch._leases import LeaseKeeper
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._policy import (
    DEFAULT_RETRY,
    RetryPolicy,
    choose_instance,
)
from workmesh.services.gateway.dispatch._recovery import Recovery
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.dispatch._versioned import VersionGate
from workmesh.services.gateway.store import JobRecord, JobStore, JobUpdate
from workmesh.v1 import common_pb2, worker_pb2

log = logging.getLogger("workmesh.gateway.dispatch")

S = common_pb2
_STREAMED = frozenset({"progress", "log"})
_AFTER_START = _STREAMED | {"result"}  # what RUNNING may share its commit with
# A deadline (and timer) is never computed further out than this: a bad stored timeout cannot
# overflow a datetime (its job still gets it, capped).
MAX_DEADLINE_SECONDS = 400 * 86400
_TERMINAL_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.OUT_OF_RANGE,
}


class LeaseExpired(Exception):
    """This replica's lease on a job may have run out: it must not drive the job any further."""


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
        self.gateway_address = ""  # host:port of this gateway, sent with attempts for ctx.step
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
        )
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task | None = None
        self._stale: set[str] = set()  # types whose next job waits for a fresher lease

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
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="gateway-usage")
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

    def submitted(self, record: JobRecord, leased_at: float | None = None) -> None:
        """Queue a job just created (leased to this replica) for dispatch.

        Args:
            record: the stored job.
            leased_at: monotonic time taken before its lease was computed (now if None).
        """
        self._leases.granted(record.job_id, time.monotonic() if leased_at is None else leased_at)
        self._outcomes.transition(S.JOB_STATUS_QUEUED, record.workflow_type)
        self.enqueue(record)

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
            self._snapshot,
            None if leased is None else lambda: leased(self.replica_id),
            settle=2 * self._renew_interval + 1.0,
        )

    def _snapshot(self) -> Snapshot:
        live: collections.Counter[str] = collections.Counter()
        for a in self._driven.running.values():
            if a.inst is not None and a.task is not None and not a.task.done():
                live[a.inst.key] += 1
        slots = tuple((i.name, i.capacity, i.in_flight, live[i.key]) for i in self._catalog.instances())
        queued = self.queue.ids()
        stuck = [job_id for job_id, job in self._driven.pending.items() if job_id not in queued and job.timer is None]
        return Snapshot(
            driven=frozenset(self.owned()), running=len(self._driven.running), slots=slots, stuck=tuple(sorted(stuck))
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

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.queue.flush(self._store)
            except WorkmeshError as exc:  # store away for now: the charges wait for the next flush
                log.warning("could not store usage: %s", exc)
            except Exception:
                log.exception("could not store usage")

    def _launch(self, job: Pending, inst: InstanceState) -> None:
        job.attempts += 1
        self._drive(Attempt(job, inst))

    def _drive(self, a: Attempt) -> None:
        # The slot, the attempt and its task come together: whatever the job carries, the
        # task's cleanup gives the slot back and the job an outcome (see _run_attempt).
        a.inst.in_flight += 1
        self._driven.running[a.job.job_id] = a
        a.task = asyncio.get_running_loop().create_task(self._run_attempt(a))

    async def _start(self, a: Attempt) -> bool:
        """Record the dispatch, then send the job to the worker; False when it must not go.

        Recorded first: a replica that takes the job over after this one died finds it
        DISPATCHED and re-attaches (a job still QUEUED in the store would be run again,
        elsewhere). Sent only while the lease still holds, for the same reason.
        """
        job, inst = a.job, a.inst
        request = job.request
        request.attempt = a.number
        request.gateway_address = self.gateway_address
        if job.timeout_s:
            request.deadline.FromDatetime(utcnow() + dt.timedelta(seconds=min(job.timeout_s, MAX_DEADLINE_SECONDS)))
        if self._capabilities is not None:
            request.series_token = self._capabilities.issue(
                job.job_id, a.number, tenant=job.owner.tenant, subject=job.owner.user, timeout_s=job.timeout_s
            )
        a.span = open_attempt_span(job, inst.name, a.number, request)
        await asyncio.gather(
            self._store.append(
                job.job_id,
                [status_event(S.JOB_STATUS_DISPATCHED, attempt=a.number, instance_id=inst.name)],
                JobUpdate(status=S.JOB_STATUS_DISPATCHED, attempts=a.number, instance_id=inst.name, worker_seq=0),
            ),
            self._store.start_attempt(job.job_id, a.number, inst.name),
        )
        self._outcomes.transition(S.JOB_STATUS_DISPATCHED, job.workflow_type)
        self._faults.at_execute(job.job_id)
        if a.stop_status:
            return False
        if self._leases.remaining(job.job_id) < self.lease_seconds / 10 and not await self._leases.renew_now(
            job.job_id
        ):
            raise LeaseExpired(f"job {job.job_id}: lease expired (and taken) while its dispatch was recorded")
        try:
            a.call = inst.execute(request)
        except Exception:  # noqa: BLE001 - counts as a lost attempt (Lost below)
            log.warning("cannot call Execute on %s", inst.name, exc_info=True)
        return True

    # -- one attempt -------------------------------------------------------------------------
    async def _run_attempt(self, a: Attempt) -> None:
        job, inst = a.job, a.inst
        recorded = a.resumed
        try:
            try:
                if not a.resumed:
                    recorded = True  # the attempt record is written by _start (or retried later)
                    if not await self._start(a):
                        await self._outcomes.stopped(a, "before it started")
                        return
                timeout = a.timeout_in if a.resumed else job.timeout_s
                if timeout is not None and job.timeout_s:
                    a.timers.append(
                        asyncio.get_running_loop().call_later(
                            min(max(timeout, 0.0), MAX_DEADLINE_SECONDS), self._control.on_timeout, a
                        )
                    )
                await self._follow(a)
            except Lost as exc:
                await self._outcomes.lost(a, str(exc))
            except asyncio.CancelledError:
                if a.call is not None:
                    a.call.cancel()
                if not a.forced:
                    raise
                await self._outcomes.stopped(a, f"forced after {self._cancel_grace:g}s grace")
            except (NotFound, FailedPrecondition):
                return  # deleted, or made terminal elsewhere (cancelled on another replica)
            except (Unavailable, ResourceExhausted, LeaseExpired) as exc:
                self._hand_back(a, exc)
            except Exception:
                log.exception("attempt %d of job %s failed in the gateway", a.number, job.job_id)
                await self._outcomes.finish(
                    job.job_id,
                    [
                        S.JobEvent(error=S.JobError(code="INTERNAL", message="gateway error")),
                        status_event(S.JOB_STATUS_FAILED, "INTERNAL"),
                    ],
                    S.JOB_STATUS_FAILED,
                    S.JobError(code="INTERNAL", message="gateway error"),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the outcome could not be stored: the job goes back
            self._hand_back(a, exc)
        finally:
            for timer in a.timers:
                timer.cancel()
            # The slot and the job are let go of at once, whatever happened above: nothing
            # this task awaits any more can keep them.
            if self._driven.running.get(job.job_id) is a:
                del self._driven.running[job.job_id]
                wf = inst.types.get(job.workflow_type)
                self.queue.ended(
                    job.job_id, succeeded=a.outcome is Outcome.SUCCEEDED, version=wf.version if wf is not None else ""
                )
            inst.in_flight -= 1
            if self._driven.started and self.queue.scheduler.shares.limited:
                self.repump()  # a running limit may have let jobs of other types start
            if a.span is not None:
                end_span(a.span, None if a.outcome is Outcome.SUCCEEDED or a.abandoned else a.outcome.value)
            if recorded and self._driven.started and not a.abandoned and not a.ended and not a.unstarted:
                # Its number now: by the time the record is written a retry may be running.
                self._tasks.spawn(self._end_attempt(job.job_id, a.number, a.outcome, a.outcome_reason))
            self._catalog.released(inst)

    def _hand_back(self, a: Attempt, exc: BaseException) -> None:
        """Stop driving a job whose state could not be stored (or whose lease ran out).

        The attempt may go on on its worker, which buffers its events. Nothing half written is
        kept here; the lease, no longer renewed, expires, and a claim — this replica's once the
        store works again, or another's — re-attaches from the last stored worker event (or
        dispatches the job again if it never reached a worker).
        """
        a.abandoned = True
        a.drop_writes()
        if a.call is not None:
            a.call.cancel()
        why = {Unavailable: "store unavailable", ResourceExhausted: "store full", LeaseExpired: "lease expired"}.get(
            type(exc), "outcome not stored"
        )
        log.warning(
            "job %s: %s (%s); handed back, attempt %d left running on %s for a re-attach",
            a.job.job_id,
            why,
            exc,
            a.number,
            a.inst.name if a.inst else "?",
        )

    async def _end_attempt(self, job_id: str, number: int, outcome: Outcome, reason: str) -> None:
        try:
            await self._store.end_attempt(job_id, number, outcome.value, reason)
        except (NotFound, Unavailable, ResourceExhausted) as exc:  # the record is informative only
            log.info("job %s: attempt %d end not recorded: %s", job_id, number, exc)

    async def _follow(self, a: Attempt) -> None:
        """Consume the attempt's stream; if it breaks after the worker started the job,
        re-attach to the same worker after the last event stored before counting it lost (a
        new Execute would replay the job's events from the start)."""
        while True:
            try:
                await self._consume(a)
                return
            except Lost:
                # An instance gone from the registry is not dialled again: its jobs go elsewhere.
                if a.stop_status or a.worker_seq == 0 or a.reattaches >= 2 or not self._driven.started:
                    raise
                if not a.inst.present:
                    raise
            a.reattaches += 1
            a.call = a.inst.attach(worker_pb2.AttachRequest(job_id=a.job.job_id, after_seq=a.worker_seq))

    async def _consume(self, a: Attempt) -> None:
        job, inst = a.job, a.inst
        call = a.call
        if call is None:
            raise Lost("could not start the Execute call")
        try:
            while True:
                ev = await call.read()
                if ev is grpc.aio.EOF:
                    await a.settle()
                    break
                a.worker_seq = ev.seq
                kind = ev.WhichOneof("payload")
                # Non-terminal events are written without waiting for their commit before the
                # next worker event is read: a job's writes still reach the store in order
                # (tasks start in creation order), share group commits, and watchers see them
                # only once committed. A failed write surfaces at the next event or at the end.
                a.check_writes()
                # RUNNING, held back to share the commit of the event that came with it.
                running: tuple[list[S.JobEvent], JobUpdate] | None = None
                if kind == "started":
                    name = ev.started.instance_id or inst.name
                    running = (
                        [status_event(S.JOB_STATUS_RUNNING, attempt=a.number, instance_id=name)],
                        JobUpdate(
                            status=S.JOB_STATUS_RUNNING, started_at=utcnow(), instance_id=name, worker_seq=ev.seq
                        ),
                    )
                    self._outcomes.transition(S.JOB_STATUS_RUNNING, job.workflow_type)
                    if self._metrics is not None:
                        self._metrics.dispatch_latency((time.monotonic() - job.ready_at) * 1000, job.workflow_type)
                    # The worker's next event, when it is already here (a short job's result,
                    # its first progress), is stored in the same transaction as RUNNING: one
                    # commit less per job, and watchers still see RUNNING first. Only what is
                    # already received is joined, so RUNNING is never kept waiting.
                    ready = take_ready(call, _AFTER_START)
                    if ready is None:
                        a.write_soon(self._store, *running)
                        continue
                    ev, kind = ready, ready.WhichOneof("payload")
                    a.worker_seq = ev.seq
                if kind in _STREAMED:
                    # Every progress and log event the worker sent that is already here goes
                    # out in one append (all stored and numbered, one operation for the lot).
                    events: list[S.JobEvent] = [] if running is None else running[0]
                    progress = None
                    while True:
                        if kind == "progress":
                            progress = ev.progress
                            events.append(S.JobEvent(progress=progress))
                        else:
                            events.append(S.JobEvent(log=ev.log))
                        a.worker_seq = ev.seq
                        ev = take_ready(call)
                        if ev is None:
                            break
                        kind = ev.WhichOneof("payload")
                    update = JobUpdate(progress=progress, worker_seq=a.worker_seq)
                    if running is not None:
                        update = dataclasses.replace(running[1], progress=progress, worker_seq=a.worker_seq)
                    a.write_soon(self._store, events, update)
                elif kind == "result":
                    a.outcome = Outcome.SUCCEEDED
                    # Queued behind the writes in flight (same transaction when they meet), with
                    # the attempt's end (and RUNNING, when the result came with it).
                    await self._outcomes.finish(
                        job.job_id,
                        [
                            *(running[0] if running is not None else ()),
                            S.JobEvent(result=ev.result),
                            status_event(S.JOB_STATUS_SUCCEEDED, attempt=a.number),
                        ],
                        S.JOB_STATUS_SUCCEEDED,
                        result=ev.result,
                        worker_seq=ev.seq,
                        ordered=True,
                        attempt=a,
                        running=running[1] if running is not None else None,
                    )
                    with contextlib.suppress(NotFound, FailedPrecondition, Unavailable):
                        await a.settle()  # committed before the terminal write: only errors are left
                    return
                elif kind == "error":
                    await a.settle()
                    await self._outcomes.on_error(a, ev.error)
                    return
        except grpc.aio.AioRpcError as exc:
            with contextlib.suppress(NotFound, FailedPrecondition):  # the writes below say so too
                await a.settle()
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                self._catalog.mark_lost(inst)
            elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self._catalog.mark_busy(inst, self._busy_pause)
            elif (
                code in _TERMINAL_ERRORS or (code == grpc.StatusCode.INTERNAL and a.worker_seq == 0 and not a.resumed)
            ) and not a.stop_status:
                # INTERNAL before the first event: the worker could not take the request (e.g.
                # decode it). Another instance of the same code would fail alike: not a lost worker.
                error = S.JobError(code=code.name, message=exc.details() or "")
                a.outcome, a.outcome_reason = Outcome.FAILED, f"{code.name}: {exc.details()}"
                await self._outcomes.finish(
                    job.job_id,
                    [S.JobEvent(error=error), status_event(S.JOB_STATUS_FAILED, code.name, a.number)],
                    S.JOB_STATUS_FAILED,
                    error,
                )
                return
            if code == grpc.StatusCode.NOT_FOUND and a.resumed and a.worker_seq == 0:
                # Taken over from a replica that recorded the dispatch and died (or let go)
                # before the worker got the job: this attempt never ran anywhere.
                a.unstarted = True
            elif a.worker_seq == 0 and not a.resumed and _refused(code, exc.details() or ""):
                # The worker refused the job before starting it: full (another gateway's jobs),
                # or draining (it left the registry a moment before this gateway saw it go, as
                # in a rolling upgrade). Not an attempt: the job goes to another instance.
                a.unstarted = True
            raise Lost(f"{code.name}: {exc.details()}") from None
        except asyncio.CancelledError:
            # Closing the channel of an instance that vanished cancels its Execute calls; only
            # a cancel of this task itself is a real cancellation.
            task = asyncio.current_task()
            if not inst.present and task is not None and not task.cancelling():
                a.drop_writes()
                raise Lost(f"instance {inst.name} left the registry") from None
            a.drop_writes()
            raise
        except (NotFound, FailedPrecondition):
            call.cancel()  # the job was deleted or finished (forced, or cancelled by another replica)
            if a.outcome is Outcome.LOST:
                a.outcome, a.outcome_reason = Outcome.CANCELLED, "job finished or deleted"
            self._tasks.spawn(self._control.send_cancel(inst, job.job_id, "job finished or deleted"))
            return
        except BaseException:
            a.drop_writes()
            raise
        raise Lost("the worker ended the stream without a result")


def _refused(code: grpc.StatusCode, details: str) -> bool:
    """Whether a worker's answer to Execute says it did not take the job."""
    return code == grpc.StatusCode.RESOURCE_EXHAUSTED or (
        code == grpc.StatusCode.UNAVAILABLE and details.startswith(WORKER_DRAINING)
    )


def take_ready(call, kinds: frozenset[str] = _STREAMED) -> worker_pb2.WorkerEvent | None:
    """The call's next event if it is of `kinds` (progress or log) and already received, else None."""
    take = getattr(call, "take_ready", None)  # session calls buffer; a plain Execute call does not say
    return None if take is None else take(kinds)
