"""Taking over jobs that are running on a worker while no gateway follows them.

After a gateway restart, or when a replica claims the jobs of one that died, the store holds
jobs in DISPATCHED or RUNNING: their attempt may still be running on its worker, which keeps the
events buffered. The new driver waits until its catalog knows the job's instance, then
re-attaches with ``Attach(job_id, after_seq=worker_seq)`` (the last worker event stored), so
nothing is recomputed and no event is stored twice. Only when the instance does not show up in
the registry within ``wait`` seconds (or the worker answers NOT_FOUND/UNAVAILABLE, handled by the
attempt itself) is the attempt lost and the job retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from workmesh.services.core.errors import NotFound, WorkmeshError
from workmesh.services.core.outcome import Outcome
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._instance import InstanceState
from workmesh.services.gateway.dispatch._attempt import Attempt, Pending, open_attempt_span, pending_of, utcnow
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.store import JobRecord, JobStore
from workmesh.v1 import common_pb2, worker_pb2

log = logging.getLogger("workmesh.gateway.recovery")


def find_instance(catalog: Catalog, name: str) -> InstanceState | None:
    """The described instance whose worker instance id (or address) is `name`, if present."""
    if not name:
        return None
    for inst in catalog.instances():
        if inst.described and inst.present and (inst.instance_id == name or inst.key == name):
            return inst
    return None


class Reattacher:
    """Jobs waiting for their worker instance to appear in the catalog.

    Args:
        catalog: where instances are looked up.
        resume: called with (job, instance) once the instance is known.
        give_up: called with (job, reason) when it does not appear within `wait` seconds.
        wait: seconds to wait for the instance.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        resume: Callable[[JobRecord, InstanceState], None],
        give_up: Callable[[JobRecord, str], None],
        wait: float,
    ) -> None:
        self._catalog = catalog
        self._resume = resume
        self._give_up = give_up
        self._wait = wait
        self._waiting: dict[str, tuple[JobRecord, asyncio.TimerHandle]] = {}

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._waiting

    def ids(self) -> list[str]:
        """The jobs waiting for their instance."""
        return list(self._waiting)

    def add(self, record: JobRecord) -> None:
        """Take over `record` (DISPATCHED or RUNNING) as soon as its instance is known."""
        if record.job_id in self._waiting:
            return
        timer = asyncio.get_running_loop().call_later(self._wait, self._expire, record.job_id)
        self._waiting[record.job_id] = (record, timer)
        self.resolve()

    def resolve(self) -> None:
        """Resume every waiting job whose instance is in the catalog now."""
        if not self._waiting:
            return
        for job_id, (record, timer) in list(self._waiting.items()):
            inst = find_instance(self._catalog, record.instance_id)
            if inst is not None:
                timer.cancel()
                del self._waiting[job_id]
                self._resume(record, inst)

    def drop(self, job_id: str) -> JobRecord | None:
        """Stop waiting for one job (cancelled, deleted, or no longer ours)."""
        entry = self._waiting.pop(job_id, None)
        if entry is None:
            return None
        entry[1].cancel()
        return entry[0]

    def clear(self) -> None:
        """Stop waiting for every job."""
        for job_id in list(self._waiting):
            self.drop(job_id)

    def _expire(self, job_id: str) -> None:
        entry = self._waiting.pop(job_id, None)
        if entry is not None:
            record = entry[0]
            self._give_up(
                record, f"instance {record.instance_id or '?'} did not appear in the registry within {self._wait:g}s"
            )


class Recovery:
    """Claimed and lost leases, and re-attaching, for the dispatcher
    (:class:`~workmesh.services.gateway.dispatch._dispatcher.Dispatcher`).

    Args:
        store: where jobs are read and attempt records go.
        catalog: where the instances of taken-over jobs are looked up.
        driven: the jobs the dispatcher drives.
        outcomes: retries or fails a taken-over job whose instance is gone.
        tasks: where take-overs and let-gos run.
        enqueue: queues a claimed QUEUED job.
        drive: follows an attempt (counts its slot, makes it running, starts its task).
        wait: seconds a taken-over job waits for its instance to appear in the registry.
    """

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        driven: Driven,
        outcomes: Outcomes,
        tasks: SideTasks,
        *,
        enqueue: Callable[[JobRecord], None],
        drive: Callable[[Attempt], None],
        wait: float,
    ) -> None:
        self._store = store
        self._driven = driven
        self._outcomes = outcomes
        self._tasks = tasks
        self._enqueue = enqueue
        self._drive = drive
        self.waiting = Reattacher(catalog, resume=self.resume, give_up=self._resume_lost, wait=wait)

    def owns(self, job_id: str) -> bool:
        """Whether the job is driven here (waiting, queued, backing off, running, re-attaching)."""
        driven = self._driven
        return job_id in driven.pending or job_id in driven.running or job_id in self.waiting

    def on_claimed(self, record: JobRecord) -> None:
        """A lease was claimed: queue the job, or re-attach to its running attempt."""
        if not self._driven.started or self.owns(record.job_id) or record.terminal:
            return
        if record.status == common_pb2.JOB_STATUS_QUEUED:
            self._enqueue(record)
        else:
            log.info(
                "job %s: taking over attempt %d on %s after worker event %d",
                record.job_id,
                record.attempts,
                record.instance_id or "?",
                record.worker_seq,
            )
            self.waiting.add(record)

    def on_lost(self, job_ids: set[str]) -> None:
        """Leases this replica no longer holds: stop driving those jobs here (nothing is written)."""
        for job_id in job_ids:
            self.waiting.drop(job_id)
            self._driven.drop(job_id)
            if job_id in self._driven.running:
                self._tasks.spawn(self._abandon_if_live(job_id))

    async def _abandon_if_live(self, job_id: str) -> None:
        # A job that just finished lost its lease with its terminal write: let its attempt end
        # normally. One still live is driven by another replica now: let go of it quietly.
        try:
            record = await self._store.get(job_id)
        except WorkmeshError:  # cannot tell: let go anyway, the lease is another replica's now
            record = None
        else:
            if record is None or record.terminal:
                return
        attempt = self._driven.running.get(job_id)
        if attempt is None:
            return
        log.warning("job %s: lease lost to another replica; letting go of attempt %d", job_id, attempt.number)
        attempt.abandoned = True
        if attempt.task is not None:
            attempt.task.cancel()

    def resume(self, record: JobRecord, inst: InstanceState) -> None:
        """Follow a job's running attempt again: Attach after the last stored worker event."""
        if not self._driven.started or record.job_id in self._driven.running:
            return
        job = pending_of(record)
        a = Attempt(job, inst, resumed=True, worker_seq=record.worker_seq)
        began = record.started_at or record.updated_at or utcnow()
        if record.timeout_s:
            a.timeout_in = record.timeout_s - (utcnow() - began).total_seconds()
        self._driven.queue.track(job, began.timestamp())
        a.span = open_attempt_span(job, inst.name, a.number, worker_pb2.ExecuteRequest())
        try:
            a.call = inst.attach(worker_pb2.AttachRequest(job_id=job.job_id, after_seq=a.worker_seq))
        except Exception:
            log.warning("cannot call Attach on %s", inst.name, exc_info=True)
        self._drive(a)

    def _resume_lost(self, record: JobRecord, why: str) -> None:
        """The instance of a taken-over attempt is gone: the attempt is lost; retry or fail."""
        job = pending_of(record)
        self._driven.pending[job.job_id] = job  # ours meanwhile (its lease is renewed)
        self._tasks.spawn(self._lose_taken_over(job, why))

    async def _lose_taken_over(self, job: Pending, why: str) -> None:
        pending = self._driven.pending
        try:
            with contextlib.suppress(NotFound):
                await self._store.end_attempt(job.job_id, job.attempts, Outcome.LOST.value, why)
            if pending.get(job.job_id) is job:
                del pending[job.job_id]
                await self._outcomes.worker_lost(job, why, counted=job.attempts)
        except Exception as exc:  # noqa: BLE001 - Unavailable, a full disk, or a bug: never keep it stuck
            # Not ours any more until the store works: the lease expires and a claim retries.
            if pending.get(job.job_id) is job:
                del pending[job.job_id]
            log.warning("job %s: could not store the loss of a taken-over attempt: %r", job.job_id, exc)
