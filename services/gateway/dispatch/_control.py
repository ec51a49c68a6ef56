"""Stopping jobs: timeouts, CancelJob and DeleteJob — on the replica that drives the job or any other.

A replica that drives a job (holds its lease) stops a running attempt by asking its worker to
cancel (the handler sees ``ctx.cancelled``), and ends the attempt itself after ``cancel_grace``
if the worker does not confirm. A replica that does not drive the job does not wait for the
owner: it calls the worker's ``Cancel`` directly (the worker instance is recorded with the job);
the worker ends the attempt with CANCELLED (forcing a handler that ignores it after its own grace
period) and the owner — or whoever re-attaches — stores that. A queued job, or one whose worker
is not in this replica's view, is made CANCELLED in the store directly; the owner then finds the
job terminal at its next write (dispatch, or any event of a running attempt) and stops the
worker itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc

from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.core.limits import status_name
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._instance import InstanceState
from workmesh.services.gateway.dispatch._attempt import Attempt, status_event
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._recovery import Reattacher, find_instance
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.store import JobRecord, JobStore
from workmesh.v1 import common_pb2 as S
from workmesh.v1 import worker_pb2

log = logging.getLogger("workmesh.gateway.dispatch")


class Control:
    """Cancel, timeout and delete for the :class:`~workmesh.services.gateway.dispatch._dispatcher.Dispatcher`.

    Args:
        store: where jobs are read and their events go.
        catalog: where a job's worker instance is looked up.
        driven: the jobs the dispatcher drives.
        outcomes: writes the CANCELLED of a job that no worker stops.
        waiting: the taken-over jobs that wait for their instance (a cancel stops the wait).
        tasks: where the cancel calls to workers run.
        cancel_grace: seconds a worker gets to stop a job before the gateway ends its attempt.
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        driven: Driven,
        outcomes: Outcomes,
        waiting: Reattacher,
        tasks: SideTasks,
        *,
        cancel_grace: float,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._driven = driven
        self._outcomes = outcomes
        self._waiting = waiting
        self._tasks = tasks
        self._cancel_grace = cancel_grace

    def on_timeout(self, a: Attempt) -> None:
        """The job's timeout passed: stop its attempt (TIMED_OUT)."""
        self._request_stop(a, S.JOB_STATUS_TIMED_OUT, f"timed out after {a.job.timeout_s:g}s")

    def _request_stop(self, a: Attempt, status: S.JobStatus, reason: str) -> None:
        if a.stop_status:
            return
        a.stop_status, a.stop_reason = status, reason
        if a.call is not None and a.inst is not None:
            self._tasks.spawn(self.send_cancel(a.inst, a.job.job_id, reason))
        a.timers.append(asyncio.get_running_loop().call_later(self._cancel_grace, self._force, a))

    def _force(self, a: Attempt) -> None:
        if a.task is not None and not a.task.done():
            a.forced = True
            a.task.cancel()

    async def send_cancel(self, inst: InstanceState, job_id: str, reason: str) -> bool:
        """Ask the worker instance to cancel the job; whether it had the job (False if the call failed)."""
        try:
            reply = await inst.stub.Cancel(worker_pb2.CancelRequest(job_id=job_id, reason=reason), timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            log.warning("Cancel of job %s on %s failed: %s", job_id, inst.name, exc.code())
            return False
        return reply.found

    async def cancel(self, job_id: str, reason: str = "") -> JobRecord:
        """Cancel a job: queued ones at once, running ones through their worker.

        Works on any replica (see the module notes). Returns the job as it is after the request
        (a running job may still be RUNNING; it becomes CANCELLED when its worker confirms, or
        after the grace period).

        Raises:
            NotFound: unknown job.
            FailedPrecondition: the job is already terminal.
        """
        record = await self._store.get(job_id)
        if record is None:
            raise NotFound(f"job_id: no job {job_id!r}")
        if record.terminal:
            raise FailedPrecondition(f"job_id: job {job_id} is already {status_name(record.status)}")
        await self._cancel(record, reason or "cancelled by request")
        return await self._store.get(job_id) or record

    async def _cancel(self, record: JobRecord, why: str) -> None:
        job_id = record.job_id
        attempt = self._driven.running.get(job_id)
        if attempt is not None:
            self._request_stop(attempt, S.JOB_STATUS_CANCELLED, why)
            return
        job = self._driven.drop(job_id)
        followed = False
        if job is None and record.status != S.JOB_STATUS_QUEUED:
            # Running on a worker and followed by another replica (or by nobody yet): tell the
            # worker; the follower stores the CANCELLED it reports.
            followed = self._waiting.drop(job_id) is None
            inst = find_instance(self._catalog, record.instance_id)
            found = inst is not None and await self.send_cancel(inst, job_id, why)
            if found and followed:
                return
        await self._outcomes.finish(
            job_id,
            [status_event(S.JOB_STATUS_CANCELLED, why, record.attempts)],
            S.JOB_STATUS_CANCELLED,
            workflow_type=record.workflow_type,
        )

    async def delete(self, job_id: str, delete_series: Callable[[str], Awaitable[object]] | None = None) -> bool:
        """Delete a job with its events; a running job is cancelled (and its attempt ended) first.

        Args:
            job_id: the job.
            delete_series: deletes the job's series in the results service, called after the
                job is terminal and before it is removed; if it raises (e.g. Unavailable) the
                job stays (cancelled) and the call can be repeated.

        Returns:
            False when the job is unknown.
        """
        record = await self._store.get(job_id)
        if record is None:
            return False
        if not record.terminal:
            await self._stop_for_delete(record)
        if delete_series is not None:
            await delete_series(job_id)
        self._driven.drop(job_id)
        self._waiting.drop(job_id)
        return await self._store.delete(job_id)

    async def _stop_for_delete(self, record: JobRecord) -> None:
        job_id = record.job_id
        attempt = self._driven.running.get(job_id)
        if attempt is not None:
            self._request_stop(attempt, S.JOB_STATUS_CANCELLED, "job deleted")
            if attempt.task is not None:
                await asyncio.wait({attempt.task}, timeout=self._cancel_grace + 1.0)
            return
        await self._cancel(record, "job deleted")
        # Driven by another replica: wait (bounded) for it to store the worker's CANCELLED.
        deadline = time.monotonic() + self._cancel_grace + 2.0
        while (left := deadline - time.monotonic()) > 0:
            current = await self._store.get(job_id)
            if current is None or current.terminal:
                return
            await self._store.wait(job_id, current.last_seq, left)
