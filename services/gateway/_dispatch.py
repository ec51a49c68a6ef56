"""The dispatcher: per-type queues, routing to instances, attempts, retries, timeouts, cancel.

One asyncio task per running attempt consumes the worker's ``Execute`` stream and turns its
events into job events through ``store.append`` — the only writer of a running job's events, so
terminal states cannot race each other. Queued jobs wait in per-type FIFO queues that are
pumped whenever capacity may have appeared (a job ended, an instance joined); nothing polls.

The lifecycle (``start``/``stop``) and the split into ``enqueue`` / ``_launch`` /
``_run_attempt`` are the seams the durable dispatcher builds on: leases around ``_launch``,
re-attaching running jobs (worker ``Attach``) after a restart, recovery via ``enqueue``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging

import grpc
from workmesh.services.gateway._attempt import (
    Attempt,
    Lost,
    Pending,
    status_event,
    utcnow,
)
from workmesh.services.gateway._catalog import Catalog, InstanceState
from workmesh.services.gateway._policy import (
    DEFAULT_RETRY,
    RetryPolicy,
    choose_instance,
    effective_max_attempts,
)
from workmesh.services.gateway.store import JobRecord, JobStore, JobUpdate
from workmesh.v1 import common_pb2, worker_pb2
from workmesh.workers.errors import FailedPrecondition, NotFound

log = logging.getLogger("workmesh.gateway.dispatch")

S = common_pb2
_TERMINAL_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OUT_OF_RANGE}


class Dispatcher:
    """Routes queued jobs to worker instances and drives every attempt to an outcome.

    Args:
        store: where job events go.
        catalog: the live instances per type (and where instance trouble is reported).
        retry: backoff between attempts after a lost worker or a retryable handler error.
        cancel_grace: seconds a worker gets to stop a cancelled or timed-out job before the
            gateway ends the attempt itself.
        busy_pause: seconds an instance that answered RESOURCE_EXHAUSTED is skipped.
    """

    def __init__(self, store: JobStore, catalog: Catalog, *, retry: RetryPolicy = DEFAULT_RETRY,
                 cancel_grace: float = 5.0, busy_pause: float = 0.2) -> None:
        self._store = store
        self._catalog = catalog
        self._retry = retry
        self._cancel_grace = cancel_grace
        self._busy_pause = busy_pause
        self._queues: dict[str, collections.deque[Pending]] = {}
        self._pending: dict[str, Pending] = {}      # queued or backing off, by job id
        self._running: dict[str, Attempt] = {}
        self._side_tasks: set[asyncio.Task] = set()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin dispatching; queued jobs move as soon as instances have capacity."""
        if not self._started:
            self._started = True
            self._catalog.add_listener(self._on_capacity)
            self._on_capacity(list(self._queues))

    async def stop(self) -> None:
        """Stop dispatching and abandon running attempts (their jobs stay non-terminal)."""
        self._started = False
        for job in self._pending.values():
            if job.timer is not None:
                job.timer.cancel()
        tasks = [a.task for a in self._running.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._side_tasks, return_exceptions=True)

    # -- intake ------------------------------------------------------------------------------
    def enqueue(self, record: JobRecord) -> None:
        """Queue a stored, non-terminal job for dispatch (after submit, or on recovery).

        A job this dispatcher already owns is left alone; one whose ``not_before`` lies in the
        future joins its queue then.
        """
        if record.job_id in self._pending or record.job_id in self._running:
            return
        request = worker_pb2.ExecuteRequest(job_id=record.job_id, workflow_type=record.workflow_type,
                                            params=record.params)
        job = Pending(record.job_id, record.workflow_type, request, record.timeout_s,
                      effective_max_attempts(record.max_attempts), attempts=record.attempts)
        self._pending[job.job_id] = job
        delay = (record.not_before - utcnow()).total_seconds() if record.not_before is not None else 0.0
        if delay > 0:
            job.timer = asyncio.get_running_loop().call_later(delay, self._after_backoff, job)
            return
        self._queues.setdefault(job.workflow_type, collections.deque()).append(job)
        if self._started:
            self._pump(job.workflow_type)

    def queued(self, workflow_type: str | None = None) -> int:
        """How many jobs wait for an instance (of one type, or of all)."""
        if workflow_type is not None:
            return len(self._queues.get(workflow_type, ()))
        return sum(len(q) for q in self._queues.values())

    def _on_capacity(self, names) -> None:
        if self._started:
            for name in names:
                self._pump(name)

    def _pump(self, workflow_type: str) -> None:
        queue = self._queues.get(workflow_type)
        if not queue:
            return
        candidates = self._catalog.instances_of(workflow_type)
        while queue:
            job = queue[0]
            if job.cancelled:
                queue.popleft()
                continue
            inst = choose_instance(candidates)
            if inst is None:
                return
            queue.popleft()
            self._pending.pop(job.job_id, None)
            self._launch(job, inst)

    def _launch(self, job: Pending, inst: InstanceState) -> None:
        job.attempts += 1
        attempt = Attempt(job, inst, job.attempts)
        inst.in_flight += 1
        self._running[job.job_id] = attempt
        request = job.request
        request.attempt = attempt.number
        if job.timeout_s:
            request.deadline.FromDatetime(utcnow() + dt.timedelta(seconds=job.timeout_s))
        # The worker call starts before anything is stored: its request goes out while the
        # submit reply is still being sent, which takes the store write off the critical path.
        # The worker runs a job id at most once at a time, so a re-dispatch never doubles it.
        try:
            attempt.call = inst.stub.Execute(request)
        except Exception:
            log.warning("cannot call Execute on %s", inst.name, exc_info=True)
        attempt.task = asyncio.get_running_loop().create_task(self._run_attempt(attempt))

    # -- one attempt -------------------------------------------------------------------------
    async def _run_attempt(self, a: Attempt) -> None:
        job, inst = a.job, a.inst
        recorded = False
        try:
            try:
                await self._store.append(job.job_id, [status_event(S.JOB_STATUS_DISPATCHED, attempt=a.number,
                                                                   instance_id=inst.name)],
                                         JobUpdate(status=S.JOB_STATUS_DISPATCHED, attempts=a.number,
                                                   instance_id=inst.name))
                await self._store.start_attempt(job.job_id, a.number, inst.name)
            except (NotFound, FailedPrecondition):
                # Deleted or finished while it waited for dispatch: stop what was started.
                self._spawn(self._send_cancel(inst, job.job_id, "job no longer exists"))
                if a.call is not None:
                    a.call.cancel()
                return
            recorded = True
            if a.stop_status:
                if a.call is not None:
                    a.call.cancel()
                await self._stopped(a, "before it started")
                return
            if job.timeout_s:
                a.timers.append(asyncio.get_running_loop().call_later(job.timeout_s, self._on_timeout, a))
            await self._consume(a)
        except Lost as exc:
            await self._lost(a, str(exc))
        except asyncio.CancelledError:
            if a.call is not None:
                a.call.cancel()
            if not a.forced:
                raise
            await self._stopped(a, f"forced after {self._cancel_grace:g}s grace")
        except Exception:
            log.exception("attempt %d of job %s failed in the gateway", a.number, job.job_id)
            await self._finish(job.job_id, [S.JobEvent(error=S.JobError(code="INTERNAL", message="gateway error")),
                                            status_event(S.JOB_STATUS_FAILED, "INTERNAL")],
                               S.JOB_STATUS_FAILED, S.JobError(code="INTERNAL", message="gateway error"))
        finally:
            for timer in a.timers:
                timer.cancel()
            if recorded and self._started:
                with contextlib.suppress(NotFound):
                    await self._store.end_attempt(job.job_id, a.number, a.outcome, a.outcome_reason)
            if self._running.get(job.job_id) is a:
                del self._running[job.job_id]
            inst.in_flight -= 1
            self._catalog.released(inst)

    async def _consume(self, a: Attempt) -> None:
        job, inst, store = a.job, a.inst, self._store
        call = a.call
        if call is None:
            raise Lost("could not start the Execute call")
        try:
            while True:
                ev = await call.read()
                if ev is grpc.aio.EOF:
                    break
                a.worker_seq = ev.seq
                kind = ev.WhichOneof("payload")
                if kind == "started":
                    name = ev.started.instance_id or inst.name
                    await store.append(job.job_id, [status_event(S.JOB_STATUS_RUNNING, attempt=a.number,
                                                                 instance_id=name)],
                                       JobUpdate(status=S.JOB_STATUS_RUNNING, started_at=utcnow(), instance_id=name))
                elif kind == "progress":
                    await store.append(job.job_id, [S.JobEvent(progress=ev.progress)],
                                       JobUpdate(progress=ev.progress))
                elif kind == "log":
                    await store.append(job.job_id, [S.JobEvent(log=ev.log)])
                elif kind == "result":
                    a.outcome = "SUCCEEDED"
                    await self._finish(job.job_id, [S.JobEvent(result=ev.result),
                                                    status_event(S.JOB_STATUS_SUCCEEDED, attempt=a.number)],
                                       S.JOB_STATUS_SUCCEEDED, result=ev.result)
                    return
                elif kind == "error":
                    await self._on_error(a, ev.error)
                    return
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                self._catalog.mark_lost(inst)
            elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self._catalog.mark_busy(inst, self._busy_pause)
            elif code in _TERMINAL_ERRORS and not a.stop_status:
                error = S.JobError(code=code.name, message=exc.details() or "")
                a.outcome, a.outcome_reason = "FAILED", f"{code.name}: {exc.details()}"
                await self._finish(job.job_id, [S.JobEvent(error=error),
                                                status_event(S.JOB_STATUS_FAILED, code.name, a.number)],
                                   S.JOB_STATUS_FAILED, error)
                return
            raise Lost(f"{code.name}: {exc.details()}") from None
        except (NotFound, FailedPrecondition):
            call.cancel()  # the job was deleted or finished (forced cancel) under us
            return
        raise Lost("the worker ended the stream without a result")

    async def _on_error(self, a: Attempt, error: S.JobError) -> None:
        job = a.job
        if a.stop_status or error.code == "CANCELLED":
            await self._stopped(a, error.message or error.code)
        elif error.retryable and self._retry.should_retry(a.number, job.max_attempts):
            a.outcome, a.outcome_reason = "FAILED", f"{error.code}: {error.message}"
            await self._requeue(a, f"{error.code}: {error.message}")
        else:
            a.outcome, a.outcome_reason = "FAILED", f"{error.code}: {error.message}"
            await self._finish(job.job_id, [S.JobEvent(error=error),
                                            status_event(S.JOB_STATUS_FAILED, error.code, a.number)],
                               S.JOB_STATUS_FAILED, error)

    async def _lost(self, a: Attempt, why: str) -> None:
        job = a.job
        a.outcome_reason = why
        if a.stop_status:
            await self._stopped(a, f"worker lost: {why}")
        elif self._retry.should_retry(a.number, job.max_attempts):
            await self._requeue(a, f"WORKER_LOST: {why}")
        else:
            error = S.JobError(code="WORKER_LOST", message=f"attempt {a.number} of {job.max_attempts} lost: {why}")
            await self._finish(job.job_id, [S.JobEvent(error=error),
                                            status_event(S.JOB_STATUS_FAILED, "WORKER_LOST", a.number)],
                               S.JOB_STATUS_FAILED, error)

    async def _requeue(self, a: Attempt, reason: str) -> None:
        job = a.job
        delay = self._retry.delay(a.number)
        try:
            await self._store.append(job.job_id, [status_event(S.JOB_STATUS_QUEUED, reason, a.number)],
                                     JobUpdate(status=S.JOB_STATUS_QUEUED,
                                               not_before=utcnow() + dt.timedelta(seconds=delay)))
        except (NotFound, FailedPrecondition):
            return
        self._pending[job.job_id] = job
        job.timer = asyncio.get_running_loop().call_later(delay, self._after_backoff, job)

    def _after_backoff(self, job: Pending) -> None:
        job.timer = None
        if not job.cancelled and self._pending.get(job.job_id) is job:
            self._queues.setdefault(job.workflow_type, collections.deque()).append(job)
            if self._started:
                self._pump(job.workflow_type)

    async def _stopped(self, a: Attempt, detail: str) -> None:
        status = a.stop_status or S.JOB_STATUS_CANCELLED
        a.outcome = S.JobStatus.Name(status)[len("JOB_STATUS_"):]
        a.outcome_reason = detail
        events = []
        error = None
        if status == S.JOB_STATUS_TIMED_OUT:
            error = S.JobError(code="TIMED_OUT", message=f"{a.stop_reason} ({detail})")
            events.append(S.JobEvent(error=error))
        events.append(status_event(status, f"{a.stop_reason or 'cancelled by the worker'} ({detail})", a.number))
        await self._finish(a.job.job_id, events, status, error)

    async def _finish(self, job_id: str, events: list[S.JobEvent], status: int,
                      error: S.JobError | None = None, result: S.JobResult | None = None) -> None:
        with contextlib.suppress(NotFound, FailedPrecondition):  # deleted, or already terminal
            await self._store.append(job_id, events, JobUpdate(status=status, finished_at=utcnow(),
                                                               error=error, result=result))

    # -- stopping jobs -----------------------------------------------------------------------
    def _on_timeout(self, a: Attempt) -> None:
        self._request_stop(a, S.JOB_STATUS_TIMED_OUT, f"timed out after {a.job.timeout_s:g}s")

    def _request_stop(self, a: Attempt, status: int, reason: str) -> None:
        if a.stop_status:
            return
        a.stop_status, a.stop_reason = status, reason
        if a.call is not None:
            self._spawn(self._send_cancel(a.inst, a.job.job_id, reason))
        a.timers.append(asyncio.get_running_loop().call_later(self._cancel_grace, self._force, a))

    def _force(self, a: Attempt) -> None:
        if a.task is not None and not a.task.done():
            a.forced = True
            a.task.cancel()

    async def _send_cancel(self, inst: InstanceState, job_id: str, reason: str) -> None:
        try:
            await inst.stub.Cancel(worker_pb2.CancelRequest(job_id=job_id, reason=reason), timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            log.warning("Cancel of job %s on %s failed: %s", job_id, inst.name, exc.code())

    async def cancel(self, job_id: str, reason: str = "") -> JobRecord:
        """Cancel a job: queued ones at once, running ones through their worker.

        Returns the job as it is after the request (a running job may still be RUNNING; it
        becomes CANCELLED when its worker confirms, or after the grace period).

        Raises:
            NotFound: unknown job.
            FailedPrecondition: the job is already terminal.
        """
        record = await self._store.get(job_id)
        if record is None:
            raise NotFound(f"job_id: no job {job_id!r}")
        if record.terminal:
            raise FailedPrecondition(
                f"job_id: job {job_id} is already {S.JobStatus.Name(record.status)[len('JOB_STATUS_'):]}")
        why = reason or "cancelled by request"
        attempt = self._running.get(job_id)
        if attempt is not None:
            self._request_stop(attempt, S.JOB_STATUS_CANCELLED, why)
        else:
            job = self._pending.pop(job_id, None)
            if job is not None:
                job.cancelled = True
                if job.timer is not None:
                    job.timer.cancel()
            await self._finish(job_id, [status_event(S.JOB_STATUS_CANCELLED, why, record.attempts)],
                               S.JOB_STATUS_CANCELLED)
        return await self._store.get(job_id) or record

    async def delete(self, job_id: str) -> bool:
        """Delete a job and its events; a running job is cancelled (and its attempt ended) first."""
        attempt = self._running.get(job_id)
        if attempt is not None:
            self._request_stop(attempt, S.JOB_STATUS_CANCELLED, "job deleted")
            if attempt.task is not None:
                await asyncio.wait({attempt.task}, timeout=self._cancel_grace + 1.0)
        job = self._pending.pop(job_id, None)
        if job is not None:
            job.cancelled = True
            if job.timer is not None:
                job.timer.cancel()
        return await self._store.delete(job_id)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
