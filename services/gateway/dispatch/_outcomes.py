"""How an attempt ends: handler errors, lost workers (retry with backoff or fail), stops, and
the terminal write — for the :class:`~workmesh.services.gateway.dispatch._dispatcher.Dispatcher`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from workmesh.services.core.errors import FailedPrecondition, NotFound, Unavailable
from workmesh.services.core.outcome import Outcome
from workmesh.services.gateway.dispatch._attempt import Attempt, Pending, status_event, utcnow
from workmesh.services.gateway.dispatch._policy import RetryPolicy
from workmesh.services.gateway.dispatch._state import Driven
from workmesh.services.gateway.store import JobStore, JobUpdate
from workmesh.v1 import common_pb2 as S


class ProgressRollup(Protocol):
    """The gateway's roll-up of a workflow's progress from its steps (``gateway._rollup``), as the
    dispatcher sees it: told of a job's own progress, and asked for a roll-up still due when the
    job ends (written with the terminal status, so a finished workflow counts all its steps)."""

    def reported(self, job_id: str) -> None: ...

    def due(self, job_id: str) -> bool: ...

    async def final(self, job_id: str) -> S.Progress | None: ...


class EndListener(Protocol):
    """Told of the terminal writes of jobs (the gateway's RunStep, ``gateway._steps``): the
    child of a step is answered from memory once its end is committed, and the parent's "step
    ended" event is written in the same transaction as the child's end."""

    def ending(self, job_id: str, status: int, error: S.JobError | None) -> list[tuple[str, S.JobEvent]]:
        """The terminal write of `job_id` is about to be submitted: the events of other jobs
        (job id, event) to write with it."""
        ...

    def ended(self, job_id: str, update: JobUpdate | None, last_seq: int, attempts: int) -> None:
        """The terminal write was committed with `update`, leaving the job at `last_seq` after
        `attempts` (0: not known) — or was not (None: the job had ended or was deleted meanwhile)."""
        ...


class Outcomes:
    """Turns the end of an attempt into job events (and re-queues it when it may be retried).

    Args:
        store: where job events go.
        driven: the jobs the dispatcher drives.
        retry: whether and when a failed or lost attempt is tried again.
        retry_later: called with (job, delay) to drive a job re-queued for a retry again after
            its backoff.
        metrics: a ``GatewayMetrics`` counting status transitions, or None.
    """

    def __init__(
        self,
        store: JobStore,
        driven: Driven,
        *,
        retry: RetryPolicy,
        retry_later: Callable[[Pending, float], None],
        metrics: Any = None,
    ) -> None:
        self._store = store
        self._driven = driven
        self._retry = retry
        self._retry_later = retry_later
        self._metrics = metrics
        self.rollup: ProgressRollup | None = None
        self.ends: EndListener | None = None

    def reported(self, job_id: str) -> None:
        """The job's handler reported its progress itself (the latest word, for now)."""
        if self.rollup is not None:
            self.rollup.reported(job_id)

    async def on_error(self, a: Attempt, error: S.JobError) -> None:
        """The worker ended the attempt with `error`: stop, retry or fail the job."""
        job = a.job
        if error.code == "TIMED_OUT" and not a.stop_status:
            # The worker's own deadline (the request carries it) passed before our timer fired.
            a.stop_status, a.stop_reason = S.JOB_STATUS_TIMED_OUT, f"timed out after {job.timeout_s or 0:g}s"
        if a.stop_status or error.code == "CANCELLED":
            await self.stopped(a, error.message or error.code)
        elif error.retryable and self._retry.should_retry(a.number, job.max_attempts):
            a.outcome, a.outcome_reason = Outcome.FAILED, f"{error.code}: {error.message}"
            await self._requeue(job, f"{error.code}: {error.message}")
        else:
            a.outcome, a.outcome_reason = Outcome.FAILED, f"{error.code}: {error.message}"
            await self.finish(
                job.job_id,
                [S.JobEvent(error=error), status_event(S.JOB_STATUS_FAILED, error.code, a.number)],
                S.JOB_STATUS_FAILED,
                error,
            )

    async def lost(self, a: Attempt, why: str) -> None:
        """The attempt ended without an outcome from its worker: retry or fail the job."""
        job = a.job
        a.outcome_reason = why
        if a.stop_status:
            await self.stopped(a, f"worker lost: {why}")
        else:
            # One that never reached a worker does not count: the next dispatch is this attempt again.
            await self.worker_lost(job, why, counted=a.number - 1 if a.unstarted else a.number)
        if a.unstarted:  # only now: the events above name the attempt as it was numbered
            job.attempts -= 1

    async def worker_lost(self, job: Pending, why: str, *, counted: int) -> None:
        """The job's current attempt (``job.attempts``) was lost with its worker: retry the job
        if `counted` attempts leave room for another, else fail it."""
        if self._retry.should_retry(counted, job.max_attempts):
            await self._requeue(job, f"WORKER_LOST: {why}")
        else:
            error = S.JobError(code="WORKER_LOST", message=f"attempt {job.attempts} of {job.max_attempts} lost: {why}")
            await self.finish(
                job.job_id,
                [S.JobEvent(error=error), status_event(S.JOB_STATUS_FAILED, "WORKER_LOST", job.attempts)],
                S.JOB_STATUS_FAILED,
                error,
            )

    async def _requeue(self, job: Pending, reason: str) -> None:
        delay = self._retry.delay(job.attempts)
        try:
            await self._store.append(
                job.job_id,
                [status_event(S.JOB_STATUS_QUEUED, reason, job.attempts)],
                JobUpdate(status=S.JOB_STATUS_QUEUED, not_before=utcnow() + dt.timedelta(seconds=delay)),
            )
        except (NotFound, FailedPrecondition):
            return
        self.transition(S.JOB_STATUS_QUEUED, job.workflow_type)
        self._retry_later(job, delay)

    async def stopped(self, a: Attempt, detail: str) -> None:
        """The attempt stopped as the gateway asked (cancel, timeout) or its worker decided."""
        status = a.stop_status or S.JOB_STATUS_CANCELLED
        a.outcome = Outcome.of_status(status)
        a.outcome_reason = detail
        events = []
        error = None
        if status == S.JOB_STATUS_TIMED_OUT:
            error = S.JobError(code="TIMED_OUT", message=f"{a.stop_reason} ({detail})")
            events.append(S.JobEvent(error=error))
        events.append(status_event(status, f"{a.stop_reason or 'cancelled by the worker'} ({detail})", a.number))
        await self.finish(a.job.job_id, events, status, error)

    async def finish(
        self,
        job_id: str,
        events: list[S.JobEvent],
        status: int,
        error: S.JobError | None = None,
        result: S.JobResult | None = None,
        worker_seq: int | None = None,
        workflow_type: str = "",
        ordered: bool = False,
        attempt: Attempt | None = None,
        running: JobUpdate | None = None,
    ) -> None:
        """Write the job's terminal `events` and `status` (a job already terminal or deleted is
        left as it is).

        Args:
            ordered: queue the write behind the attempt's writes in flight.
            attempt: the attempt whose end is recorded in the same transaction.
            running: the RUNNING update whose events lead `events` (started_at, instance_id
                kept; it shares this commit).
        """
        update = JobUpdate(status=status, finished_at=utcnow(), error=error, result=result, worker_seq=worker_seq)
        if running is not None:
            update.started_at, update.instance_id = running.started_at, running.instance_id
        if self.rollup is not None and self.rollup.due(job_id):  # a workflow whose steps changed lately
            progress = await self.rollup.final(job_id)
            if progress is not None:
                update.progress = progress
                lead = 0  # after a RUNNING that shares this write: watchers see RUNNING first
                while lead < len(events) and events[lead].status.status == S.JOB_STATUS_RUNNING:
                    lead += 1
                events = [*events[:lead], S.JobEvent(progress=progress), *events[lead:]]
        write: Any = self._store.append(job_id, events, update)
        if ordered:  # behind the attempt's writes in flight (tasks start in creation order)
            write = asyncio.ensure_future(write)
        ends = self.ends
        # Started in this loop turn, like the write: they share its transaction.
        with_it = [
            asyncio.ensure_future(self._store.append(other, [event]))
            for other, event in (ends.ending(job_id, status, error) if ends is not None else ())
        ]
        end = None
        if attempt is not None:
            # The attempt's end goes out with the terminal write (one transaction).
            end = asyncio.ensure_future(
                self._store.end_attempt(job_id, attempt.number, attempt.outcome.value, attempt.outcome_reason)
            )
            attempt.ended = True
        written = None
        try:
            written = await write
        except (NotFound, FailedPrecondition):  # deleted, or already terminal
            return
        finally:
            try:
                if end is not None:
                    with contextlib.suppress(NotFound, Unavailable):
                        await end
                for other in with_it:  # another job ended meanwhile: nothing to show it on
                    with contextlib.suppress(NotFound, FailedPrecondition, Unavailable):
                        await other
            finally:
                if ends is not None:
                    driven = self._driven.running.get(job_id)
                    attempts = attempt.number if attempt is not None else driven.number if driven is not None else 0
                    ends.ended(job_id, update if written else None, written[-1].seq if written else 0, attempts)
        if self._metrics is not None:
            driven = self._driven.running.get(job_id)
            self.transition(status, workflow_type or (driven.job.workflow_type if driven else ""))

    def transition(self, status: int, workflow_type: str) -> None:
        """Count a job's status change (metrics)."""
        if self._metrics is not None:
            self._metrics.job_transition(status, workflow_type)
