"""Workflow steps (issue 13): RunStep finds or creates a running job's child job and awaits it.

A step is identified by (parent job, step name). Its child job is created under the
idempotency key ``workmesh.step:<parent>:<name>:<attempt>`` — the store's unique key is what
makes "find or create" one atomic operation on every adapter, even with several gateway replicas
or two calls racing. The parent's child jobs, read once per parent attempt (and kept, see
``_step_cache``), give the step's history:

- a child that SUCCEEDED (in any attempt of the parent: one after its worker died, or one that
  ``RetryJob`` started) is returned at once: nothing runs again;
- a child still running (its parent's worker died while it ran) is awaited, not duplicated;
- a child that failed in *this* attempt is returned as it ended (a handler asking twice sees
  the same answer); one that failed in an earlier attempt runs again, as a new child.

The parent's events record each step that starts and ends (``JobEvent.step``, with the child
job id), so that one WatchJob of the parent shows the workflow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from workmesh.services.core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from workmesh.services.core.limits import status_name
from workmesh.services.gateway._convert import job_to_proto
from workmesh.services.gateway._rollup import MAX_WEIGHT, WEIGHT_LABEL, Rollup
from workmesh.services.gateway._step_access import StepAccess
from workmesh.services.gateway._step_cache import ParentSteps, StepCache
from workmesh.services.gateway._step_ends import StepEnds, step_ended_event
from workmesh.services.gateway.dispatch._jobqueue import owner_of, priority_of
from workmesh.services.gateway.store import JobRecord, JobStore
from workmesh.v1 import common_pb2, gateway_pb2

log = logging.getLogger("workmesh.gateway.steps")

MAX_STEP_NAME = 200
PARENT_LABEL = "workmesh.parent"
STEP_LABEL = "workmesh.step"
_K = common_pb2.StepEvent
# Stores a child (SubmitJob's checks and dispatch): (request, context, parent, step name, key, fresh)
# -> (the stored job, whether it is new).
Submit = Callable[..., Awaitable[tuple[JobRecord, bool]]]


@dataclass(frozen=True)
class StepLimits:
    """Bounds on workflows (``WORKMESH_MAX_STEPS``, ``WORKMESH_MAX_STEP_DEPTH``).

    Attributes:
        max_steps: child jobs one job may create (over all its attempts).
        max_depth: how deep steps may nest (a step of a step of ... a job).
    """

    max_steps: int = 1000
    max_depth: int = 8


def step_key(parent_id: str, step_name: str, attempt: int) -> str:
    """The idempotency key of a step's child job made by `attempt` of the parent."""
    return f"workmesh.step:{parent_id}:{step_name}:{attempt}"


def _check_request(request: gateway_pb2.RunStepRequest) -> None:
    if not request.parent_job_id:
        raise InvalidArgument("parent_job_id", "must not be empty")
    name = request.step_name
    if not name:
        raise InvalidArgument("step_name", "must not be empty")
    if len(name) > MAX_STEP_NAME or not name.isprintable():
        raise InvalidArgument("step_name", f"must be at most {MAX_STEP_NAME} printable characters")
    if not request.workflow_type:
        raise InvalidArgument("workflow_type", "must not be empty")
    if request.parent_attempt < 0:
        raise InvalidArgument("parent_attempt", "must not be negative")
    if not 0 <= request.weight <= MAX_WEIGHT:  # NaN fails both
        raise InvalidArgument("weight", f"must be from 0 to {MAX_WEIGHT:g} (0: the default, 1)")


def _same(child: JobRecord, request: gateway_pb2.RunStepRequest, params: dict) -> None:
    if child.workflow_type != request.workflow_type or child.params != params:
        raise FailedPrecondition(
            f"step_name: step {request.step_name!r} of job {request.parent_job_id} already ran as job "
            f"{child.job_id} ({child.workflow_type}) with other params; a step name is one step: give "
            "a step with another type or other params its own name"
        )


class Steps:
    """RunStep for the gateway servicer; the dispatcher tells :attr:`ends` of its children's
    ends (``Dispatcher.follow_ends``).

    Args:
        store: the job store.
        submit: stores and dispatches a child job (the servicer's SubmitJob body).
        check_params: ``(workflow_type, params) -> validated params`` (NOT_FOUND for an unknown
            type naming the available ones, INVALID_ARGUMENT for bad params).
        limits: the bounds on steps.
        watch_idle: seconds to wait for a child's next event before looking at it again.
        access: with authentication on, checks that the caller is the parent's attempt (see
            ``_step_access``); None: authentication off.
    """

    def __init__(
        self,
        store: JobStore,
        submit: Submit,
        check_params: Callable[[str, Any], dict],
        limits: StepLimits,
        *,
        watch_idle: float = 30.0,
        access: StepAccess | None = None,
    ) -> None:
        self._store = store
        self._access = access
        self._submit = submit
        self._check_params = check_params
        self.limits = limits
        self._watch_idle = watch_idle
        self.rollup = Rollup(store)
        self.ends = StepEnds(self.rollup.poke)
        self._cache = StepCache()
        self._loading: dict[tuple[str, int], asyncio.Future[ParentSteps]] = {}

    async def run(self, request: gateway_pb2.RunStepRequest, context=None) -> gateway_pb2.RunStepResponse:
        """Run (or find) the step and return its child job once it has ended."""
        if self._access is None:
            return await self._run(request, context)
        with self._access.acting(request, context):  # as the parent's owner
            return await self._run(request, context)

    async def _run(self, request: gateway_pb2.RunStepRequest, context) -> gateway_pb2.RunStepResponse:
        _check_request(request)
        params = self._check_params(request.workflow_type, request.params)
        parent_id, name = request.parent_job_id, request.step_name
        entry = await self._entry(request)
        child = entry.done.get(name)
        if child is not None:
            _same(child, request, params)
            return gateway_pb2.RunStepResponse(job=job_to_proto(child), reused=True)
        earlier = entry.earlier.pop(name, None)
        if earlier is not None:
            _same(earlier, request, params)
            child, _ = await self._await(earlier.job_id, parent_id)  # left running by an earlier attempt
        else:
            job_id, started = await self._create(parent_id, entry, request, params, context)
            if started is None:  # the child existed
                found = await self._store.get(job_id)
                if found is None:
                    raise NotFound(f"step_name: the job of step {name!r} was deleted")
                _same(found, request, params)
                if found.terminal:  # asked again in this attempt: as it ended
                    self._ended(entry, found)
                    return gateway_pb2.RunStepResponse(job=job_to_proto(found), reused=True)
            try:
                child, told = await self._await(job_id, parent_id)
            finally:
                self.ends.forget(job_id)
                if started is not None:
                    await started  # stored before the step's end is (and its failure surfaces)
            self._ended(entry, child)
            if told == child.status:  # written with the child's end, in its transaction
                return gateway_pb2.RunStepResponse(job=job_to_proto(child))
        self._ended(entry, child)
        await self._record(parent_id, name, child)
        return gateway_pb2.RunStepResponse(job=job_to_proto(child))

    @staticmethod
    def _ended(entry: ParentSteps, child: JobRecord) -> None:
        if child.status == common_pb2.JOB_STATUS_SUCCEEDED:
            entry.done[child.step_name] = child

    def forget(self, job_id: str) -> None:
        """A job was deleted: forget what is kept of it as a parent (DeleteJob calls it)."""
        self._cache.forget(job_id)

    async def _entry(self, request: gateway_pb2.RunStepRequest) -> ParentSteps:
        """The parent attempt's steps: read once per attempt, then the parent only peeked at."""
        parent_id = request.parent_job_id
        entry = self._cache.get(parent_id, request.parent_attempt) if request.parent_attempt else None
        if entry is not None:
            state = await _peek(self._store, parent_id)
            if state is None:
                self._cache.forget(parent_id)
                raise NotFound(f"parent_job_id: no job {parent_id!r}")
            if state[1]:
                raise FailedPrecondition(f"parent_job_id: job {parent_id} has ended: only a running job starts steps")
            return entry
        # Steps started together (asyncio.gather) arrive together: one of them reads the parent.
        key = (parent_id, request.parent_attempt)
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load(request))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load(self, request: gateway_pb2.RunStepRequest) -> ParentSteps:
        parent_id = request.parent_job_id
        parent = await self._store.get(parent_id)
        if parent is None:
            raise NotFound(f"parent_job_id: no job {parent_id!r}")
        if parent.terminal:
            raise FailedPrecondition(
                f"parent_job_id: job {parent.job_id} is {status_name(parent.status)}: only a running job starts steps"
            )
        attempt = request.parent_attempt or max(parent.attempts, 1)
        children = await self._store.children(parent_id)
        entry = ParentSteps.of(parent, attempt, await self._depth(parent), children)
        self._cache.put(parent_id, entry)
        return entry

    async def _depth(self, parent: JobRecord) -> int:
        """How many jobs are above a step of `parent` (1: the parent is a submitted job)."""
        depth, current = 1, parent
        while current.parent_id and depth <= self.limits.max_depth:
            above = await self._store.get(current.parent_id)
            if above is None:
                break
            depth, current = depth + 1, above
        return depth

    async def _create(
        self, parent_id: str, entry: ParentSteps, request: gateway_pb2.RunStepRequest, params: dict, context
    ) -> tuple[str, asyncio.Future[None] | None]:
        """Find or create the step's child of this attempt: its job id, and the write of the
        parent's "step started" event (None: the child existed).

        The event is written while the child is dispatched, not before: it then shares the
        transaction that records the child's dispatch, and the child reaches its worker one
        commit sooner.
        """
        limits = self.limits
        if entry.depth >= limits.max_depth + 1:
            raise ResourceExhausted(
                f"step_name: job {parent_id} is nested {limits.max_depth} steps deep already: steps nest at "
                f"most {limits.max_depth} deep (WORKMESH_MAX_STEP_DEPTH)"
            )
        if entry.count >= limits.max_steps:
            raise ResourceExhausted(
                f"step_name: job {parent_id} has started {limits.max_steps} steps: at most "
                f"{limits.max_steps} per job (WORKMESH_MAX_STEPS)"
            )
        owner = owner_of(entry.labels)
        priority = priority_of(entry.labels)
        labels = {PARENT_LABEL: parent_id, STEP_LABEL: request.step_name}
        if request.weight and request.weight != 1:
            labels[WEIGHT_LABEL] = f"{request.weight:g}"
        submit = gateway_pb2.SubmitJobRequest(
            workflow_type=request.workflow_type,
            labels=labels,
            tenant=owner.tenant,
            user=owner.user,
            priority=str(priority) if priority else "",
        )
        for name, value in params.items():
            submit.params[name].CopyFrom(value)
        key = step_key(parent_id, request.step_name, entry.attempt)
        # A step this attempt has not asked for yet is dispatched with its create (one commit).
        fresh = request.step_name not in entry.asked
        entry.asked.add(request.step_name)
        stored, created = await self._submit(
            submit, context, parent=parent_id, step_name=request.step_name, key=key, fresh=fresh
        )
        if not created:
            return stored.job_id, None
        self.ends.expect(stored)  # before any await: the dispatcher may end it from now on
        entry.count += 1
        event = common_pb2.JobEvent(
            step=_K(
                kind=_K.KIND_STARTED,
                step_name=request.step_name,
                child_job_id=stored.job_id,
                workflow_type=request.workflow_type,
                child_status=common_pb2.JOB_STATUS_QUEUED,
            )
        )
        return stored.job_id, asyncio.ensure_future(self._append(parent_id, event))

    async def _await(self, job_id: str, parent_id: str) -> tuple[JobRecord, int | None]:
        """The child once it has ended, and the child status the parent's "step ended" event
        was written with alongside its end (None: not written); its changes meanwhile roll up
        into the parent's progress."""
        while True:
            state = await _peek(self._store, job_id)
            if state is None:
                raise NotFound(f"step_name: the step's job {job_id} was deleted")
            last_seq, terminal = state
            if terminal:
                child, told = await self.ends.take(job_id)  # from memory when the dispatcher ended it
                if child is None:
                    child = await self._store.get(job_id)
                if child is None:
                    raise NotFound(f"step_name: the step's job {job_id} was deleted")
                return child, told
            await self._store.wait(job_id, last_seq, self._watch_idle)
            self.rollup.poke(parent_id)

    async def _record(self, parent_id: str, name: str, child: JobRecord) -> None:
        event = step_ended_event(name, child.job_id, child.workflow_type, child.status, child.error)
        await self._append(parent_id, event)

    async def _append(self, parent_id: str, event: common_pb2.JobEvent) -> None:
        self.rollup.poke(parent_id)  # a step started or ended
        try:
            await self._store.append(parent_id, [event])
        except (FailedPrecondition, NotFound):  # the parent ended (or went) meanwhile: nothing to show it on
            log.debug("step event for job %s not stored: the job has ended", parent_id)


async def _peek(store: JobStore, job_id: str) -> tuple[int, bool] | None:
    """(last_seq, terminal) of a job, or None when unknown — from memory when the store can."""
    peek = getattr(store, "peek", None)
    if peek is not None:
        return await peek(job_id)
    record = await store.get(job_id)
    return None if record is None else (record.last_seq, record.terminal)


async def cascade(store: JobStore, job_id: str, action: Callable[[JobRecord], Awaitable[object]]) -> None:
    """Apply `action` to every step of `job_id`, deepest first (cancel and delete a workflow)."""
    for child in await store.children(job_id):
        await cascade(store, child.job_id, action)
        await action(child)
