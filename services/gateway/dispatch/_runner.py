"""One attempt from dispatch to outcome: the DISPATCHED record, the Execute call under a fresh
lease, the timeout, re-attaches after a broken stream, and the slot given back whatever
happens — for the :class:`~workmesh.services.gateway.dispatch._dispatcher.Dispatcher`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from workmesh.services.core.auth import SeriesCapabilities
from workmesh.services.core.errors import FailedPrecondition, NotFound, ResourceExhausted, Unavailable
from workmesh.services.core.outcome import Outcome
from workmesh.services.core.telemetry import end_span
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.dispatch._attempt import Attempt, Lost, open_attempt_span, status_event, utcnow
from workmesh.services.gateway.dispatch._consume import Consumer
from workmesh.services.gateway.dispatch._control import Control
from workmesh.services.gateway.dispatch._faults import Faults
from workmesh.services.gateway.dispatch._leases import LeaseKeeper
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.store import JobStore, JobUpdate
from workmesh.v1 import common_pb2, worker_pb2

log = logging.getLogger("workmesh.gateway.dispatch")

S = common_pb2
# A deadline (and timer) is never computed further out than this: a bad stored timeout cannot
# overflow a datetime (its job still gets it, capped).
MAX_DEADLINE_SECONDS = 400 * 86400


class LeaseExpired(Exception):
    """This replica's lease on a job may have run out: it must not drive the job any further."""


class Runner:
    """Drives attempts (``run`` is the task of one) for the dispatcher.

    Args:
        store: where job events and attempt records go.
        catalog: the instances (released when an attempt ends).
        driven: the jobs the dispatcher drives.
        outcomes: how an attempt ends.
        control: timeouts.
        tasks: side tasks the dispatcher waits for when it stops.
        leases: the job leases (renewed before an Execute when close to running out).
        consumer: turns the worker's stream into job events.
        faults: faults to inject at the lease boundary.
        capabilities: signs each attempt's series write capability (auth on), or None.
        cancel_grace: seconds a worker gets to stop a cancelled or timed-out job.
        lease_seconds: how long a job lease lasts without renewal.
        repump: offers free slots again (after an attempt ends under running limits).
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        driven: Driven,
        outcomes: Outcomes,
        control: Control,
        tasks: SideTasks,
        leases: LeaseKeeper,
        consumer: Consumer,
        *,
        faults: Faults,
        capabilities: SeriesCapabilities | None,
        cancel_grace: float,
        lease_seconds: float,
        repump: Callable[[], None],
        metrics: Any = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._driven = driven
        self._outcomes = outcomes
        self._control = control
        self._tasks = tasks
        self._leases = leases
        self._consumer = consumer
        self._faults = faults
        self._capabilities = capabilities
        self._cancel_grace = cancel_grace
        self.lease_seconds = lease_seconds
        self._repump = repump
        self._metrics = metrics
        self.gateway_address = ""  # host:port of this gateway, sent with attempts for ctx.step

    def begin(self, a: Attempt) -> None:
        """Prepare a new attempt's request and start recording its dispatch, at once (not in
        the attempt's task): a dispatch decided while its job's create is still queued for the
        store is written right behind it — in the same transaction when the store commits what
        one event-loop turn queued (the SQLite writer) — and :meth:`run` sends the job to its
        worker once both are stored."""
        job, inst = a.job, a.inst
        try:
            request = job.request
            request.attempt = a.number
            request.gateway_address = self.gateway_address
            if job.timeout_s:
                deadline = utcnow() + dt.timedelta(seconds=min(job.timeout_s, MAX_DEADLINE_SECONDS))
                request.deadline.FromDatetime(deadline)
            if self._capabilities is not None:
                request.series_token = self._capabilities.issue(
                    job.job_id, a.number, tenant=job.owner.tenant, subject=job.owner.user, timeout_s=job.timeout_s
                )
            a.span = open_attempt_span(job, inst.name, a.number, request)
            a.record_parts = (
                asyncio.ensure_future(
                    self._store.append(
                        job.job_id,
                        [status_event(S.JOB_STATUS_DISPATCHED, attempt=a.number, instance_id=inst.name)],
                        JobUpdate(
                            status=S.JOB_STATUS_DISPATCHED, attempts=a.number, instance_id=inst.name, worker_seq=0
                        ),
                    )
                ),
                asyncio.ensure_future(self._store.start_attempt(job.job_id, a.number, inst.name)),
            )
            a.recording = asyncio.gather(*a.record_parts)
        except Exception as exc:  # noqa: BLE001 - raised by run, which gives the attempt its outcome
            a.recording = asyncio.get_running_loop().create_future()
            a.recording.set_exception(exc)

    async def _start(self, a: Attempt) -> bool:
        """Wait for the dispatch record (:meth:`begin`), then send the job to the worker; False
        when it must not go.

        Recorded first: a replica that takes the job over after this one died finds it
        DISPATCHED and re-attaches (a job still QUEUED in the store would be run again,
        elsewhere). Sent only while the lease still holds, for the same reason.
        """
        job, inst = a.job, a.inst
        if a.recording is None:
            self.begin(a)
        assert a.recording is not None
        # The parts awaited themselves, not their gather: the attempt goes on a loop turn sooner
        # (part done -> here, instead of part done -> gather -> here), ahead of the client's
        # acknowledgement of the same commit, so the job leaves for its worker before that
        # reply is built and written.
        for part in a.record_parts or (a.recording,):
            await part
        self._outcomes.transition(S.JOB_STATUS_DISPATCHED, job.workflow_type)
        self._faults.at_execute(job.job_id)
        if a.stop_status:
            return False
        if self._leases.remaining(job.job_id) < self.lease_seconds / 10 and not await self._leases.renew_now(
            job.job_id
        ):
            raise LeaseExpired(f"job {job.job_id}: lease expired (and taken) while its dispatch was recorded")
        try:
            a.call = inst.execute(job.request)
        except Exception:  # noqa: BLE001 - counts as a lost attempt (Lost below)
            log.warning("cannot call Execute on %s", inst.name, exc_info=True)
        return True

    async def run(self, a: Attempt) -> None:
        """The task of one attempt: start it (unless resumed), follow it, give its slot back."""
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
            if a.recording is not None:  # its failure was raised above, or nobody is left to hear it
                a.recording.add_done_callback(_retrieve)
            for timer in a.timers:
                timer.cancel()
            # The slot and the job are let go of at once, whatever happened above: nothing
            # this task awaits any more can keep them.
            if self._driven.running.get(job.job_id) is a:
                del self._driven.running[job.job_id]
                wf = inst.types.get(job.workflow_type)
                self._driven.queue.ended(
                    job.job_id, succeeded=a.outcome is Outcome.SUCCEEDED, version=wf.version if wf is not None else ""
                )
            inst.in_flight -= 1
            if self._driven.started and self._driven.queue.scheduler.shares.limited:
                self._repump()  # a running limit may have let jobs of other types start
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
                await self._consumer.consume(a)
                return
            except Lost:
                # An instance gone from the registry is not dialled again: its jobs go elsewhere.
                if a.stop_status or a.worker_seq == 0 or a.reattaches >= 2 or not self._driven.started:
                    raise
                if not a.inst.present:
                    raise
            a.reattaches += 1
            a.call = a.inst.attach(worker_pb2.AttachRequest(job_id=a.job.job_id, after_seq=a.worker_seq))


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
