"""Routing by version: a job goes only to instances serving a version its requirement matches.

During a rolling upgrade a type's instances serve several versions at once. The dispatcher asks
:meth:`VersionGate.matching` for the instances that may run a job. If none of them has a free
slot, the job is held out of that dispatch pass, so jobs behind it that other instances can run
still start (no head-of-line blocking). A job that no live instance can run at all (a job pinned
to ``^1`` after the last 1.x worker left) stays QUEUED. Its events then say why, once per change
of the live versions. If it has a timeout, it ends TIMED_OUT when that timeout has passed since
it was submitted, with an error naming the requirement and the versions that were live.

A requirement may span versions whose parameters differ (``^1.2`` over 1.2 and 1.3 where 1.3
added one; the default ``>=`` newest over a 2.0 that removed one or narrowed its bounds): a job
goes only to a version whose declaration accepts its stored params (:meth:`VersionGate.fits`,
checked once per job and version), so it never fails on an instance that does not know them.

A pinned job is also checked when it joins the queue and whenever the live versions of its type
change (:meth:`VersionGate.queued`, :meth:`VersionGate.recheck`), not only when a dispatch pass
reaches it: with no instance of its type left at all, or only busy instances of other versions,
no pass would, and its queue timeout would never be armed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from workmesh.services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from workmesh.services.gateway.discovery._catalog import Catalog
from workmesh.services.gateway.discovery._instance import InstanceState
from workmesh.services.gateway.dispatch._attempt import Pending, status_event
from workmesh.services.gateway.dispatch._outcomes import Outcomes
from workmesh.services.gateway.dispatch._state import Driven, SideTasks
from workmesh.services.gateway.store import JobStore
from workmesh.v1 import common_pb2 as S
from workmesh.workers.params import validate_params

log = logging.getLogger("workmesh.gateway.dispatch")
_DECLARING = " that declares its params"  # a matching version is live, but without (some of) its params


class VersionGate:
    """Version matching, waiting reasons and queue timeouts for the dispatcher.

    Args:
        store: where the waiting reasons go (as WARNING log events of the job).
        catalog: the live instances and their versions.
        driven: the jobs the dispatcher drives (a timed-out waiting job is dropped from it).
        outcomes: writes the TIMED_OUT of a job that waited too long.
        tasks: where those writes run.
    """

    def __init__(self, store: JobStore, catalog: Catalog, driven: Driven, outcomes: Outcomes, tasks: SideTasks) -> None:
        self._store = store
        self._catalog = catalog
        self._driven = driven
        self._outcomes = outcomes
        self._tasks = tasks
        self._told: dict[str, tuple[tuple[str, ...], str]] = {}  # job id -> (live versions, why it waits)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._pinned: dict[str, dict[str, Pending]] = {}  # type -> queued pinned jobs by id
        self._live: dict[str, frozenset[str]] = {}  # type -> its live versions at the last recheck

    @staticmethod
    def fits(job: Pending, declaration: S.WorkflowType) -> bool:
        """Whether a version's declaration accepts the job's params (remembered per version)."""
        fit = job.fits.get(declaration.version)
        if fit is None:
            try:
                validate_params(declaration.params, job.request.params)
                fit = True
            except InvalidArgument:  # a param it does not declare, or out of its bounds
                fit = False
            job.fits[declaration.version] = fit
        return fit

    @classmethod
    def matching(cls, job: Pending, workflow_type: str, candidates: Sequence[InstanceState]) -> list[InstanceState]:
        """The candidates serving a version the job may run on: it matches the job's
        requirement and its declaration accepts the job's params."""
        requirement = job.requirement
        return [
            i
            for i in candidates
            if requirement.matches((declared := i.types[workflow_type]).version) and cls.fits(job, declared)
        ]

    def _runnable(self, job: Pending, workflow_type: str) -> tuple[bool, bool]:
        """Whether a live version may run the job; and whether one matches its requirement at all."""
        matched = False
        for version, instances in self._catalog.live_versions(workflow_type).items():
            if job.requirement.matches(version):
                matched = True
                if self.fits(job, instances[0].types[workflow_type]):
                    return True, True
        return False, matched

    def queued(self, job: Pending) -> None:
        """A job joined the queue: if it is pinned, watch it (see :meth:`held`) until it starts."""
        if job.requirement:
            self._pinned.setdefault(job.workflow_type, {})[job.job_id] = job
            self.held(job, job.workflow_type)

    def recheck(self) -> None:
        """After a catalog change: the queued pinned jobs of each type whose live versions
        changed are checked again (a last matching instance may have left)."""
        queued = None
        for workflow_type, jobs in list(self._pinned.items()):
            live = frozenset(self._catalog.live_versions(workflow_type))
            if self._live.get(workflow_type) == live:
                continue
            self._live[workflow_type] = live
            queued = self._driven.queue.ids() if queued is None else queued
            for job_id, job in list(jobs.items()):
                if self._driven.pending.get(job_id) is not job or job_id not in queued:
                    del jobs[job_id]  # started elsewhere, cancelled or no longer ours
                else:
                    self.held(job, workflow_type)
            if not jobs:
                del self._pinned[workflow_type]
                self._live.pop(workflow_type, None)

    def held(self, job: Pending, workflow_type: str) -> None:
        """No instance with a free slot may run `job` now: if no live instance serves a matching
        version at all, record why it waits and arm its queue timeout."""
        runnable, matched = self._runnable(job, workflow_type)
        if runnable:
            self._told.pop(job.job_id, None)  # a matching instance is back: it waits for a slot only
            return  # one is live, only busy: it will come to this job
        versions = tuple(sorted(self._catalog.live_versions(workflow_type)))
        told = self._told.get(job.job_id)
        if told is None or told[0] != versions:
            reason = (
                f"no live instance of {workflow_type!r} serves a version matching "
                f"{job.requirement.text!r}{_DECLARING if matched else ''} "
                f"(live versions: {', '.join(versions) or 'none'})"
            )
            self._told[job.job_id] = (versions, reason)
            log.info("job %s waiting: %s", job.job_id, reason)
            event = S.JobEvent(log=S.LogLine(level=S.LOG_LEVEL_WARNING, message=f"waiting: {reason}"))
            self._tasks.spawn(self._note(job.job_id, event))
        if job.timeout_s and job.job_id not in self._timers:
            left = max(0.0, job.enqueued_at + job.timeout_s - time.time())
            loop = asyncio.get_running_loop()
            self._timers[job.job_id] = loop.call_later(left, self._expire, job, workflow_type)

    def waiting(self, job_id: str) -> str:
        """Why a queued job cannot start at its turn ("" when it only waits for a slot)."""
        told = self._told.get(job_id)
        return told[1] if told is not None else ""

    def started(self, job_id: str) -> None:
        """The job was dispatched (or left this replica's queue): forget its wait."""
        self._told.pop(job_id, None)
        for jobs in self._pinned.values():
            jobs.pop(job_id, None)
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    def stop(self) -> None:
        """Cancel every queue timer (the dispatcher stops)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._told.clear()
        self._pinned.clear()
        self._live.clear()

    async def _note(self, job_id: str, event: S.JobEvent) -> None:
        with contextlib.suppress(NotFound, FailedPrecondition):  # deleted or ended meanwhile
            await self._store.append(job_id, [event])

    def _expire(self, job: Pending, workflow_type: str) -> None:
        self._timers.pop(job.job_id, None)
        if self._driven.pending.get(job.job_id) is not job or job.job_id not in self._driven.queue.ids():
            return  # dispatched (its attempt's own timeout applies), cancelled or no longer ours
        runnable, matched = self._runnable(job, workflow_type)
        if runnable:
            return  # a matching instance came: the job starts at its next slot
        self._driven.drop(job.job_id)
        self.started(job.job_id)
        live = self._catalog.live_versions(workflow_type)
        message = (
            f"timed out after {job.timeout_s:g}s in the queue: no live instance of {workflow_type!r} served a "
            f"version matching {job.requirement.text!r}{_DECLARING if matched else ''} "
            f"(live versions: {', '.join(sorted(live)) or 'none'})"
        )
        error = S.JobError(code="TIMED_OUT", message=message)
        events = [S.JobEvent(error=error), status_event(S.JOB_STATUS_TIMED_OUT, message, job.attempts)]
        self._tasks.spawn(
            self._outcomes.finish(job.job_id, events, S.JOB_STATUS_TIMED_OUT, error, workflow_type=workflow_type)
        )
