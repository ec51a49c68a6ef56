"""What the dispatcher keeps per job and per attempt, and the job events it writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from workmesh.services.core.outcome import Outcome
from workmesh.services.core.telemetry import inject_context, start_job_span, use_span
from workmesh.services.gateway.discovery._instance import InstanceState
from workmesh.services.gateway.discovery._versions import ANY, Requirement, stored_requirement
from workmesh.services.gateway.dispatch._fairshare import Owner
from workmesh.services.gateway.dispatch._jobqueue import owner_of, priority_of
from workmesh.services.gateway.dispatch._policy import effective_max_attempts
from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2, worker_pb2

S = common_pb2
log = logging.getLogger("workmesh.gateway.dispatch")


def utcnow() -> dt.datetime:
    """Now, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


def status_event(status: S.JobStatus, reason: str = "", attempt: int = 0, instance_id: str = "") -> S.JobEvent:
    """A job event announcing a status change."""
    return S.JobEvent(status=S.StatusChange(status=status, reason=reason, attempt=attempt, instance_id=instance_id))


@dataclass(eq=False)
class Pending:
    """A job the dispatcher owns until it is terminal: what it needs to (re)dispatch it."""

    job_id: str
    workflow_type: str
    request: worker_pb2.ExecuteRequest
    timeout_s: float | None
    max_attempts: int
    attempts: int = 0  # made so far, the one running included (its number): the one count in memory
    cancelled: bool = False
    timer: asyncio.TimerHandle | None = None  # backoff before the next attempt
    trace_parent: str = ""  # the job's traceparent: each attempt's span is its child
    ready_at: float = 0.0  # monotonic time it became dispatchable (dispatch latency)
    owner: Owner = Owner()  # who it is accounted to (fair share, limits)
    priority: int = 0  # order among its owner's jobs
    enqueued_at: float = 0.0  # wall-clock creation time: its place in the queue, across restarts
    requirement: Requirement = ANY  # the versions that may run it (SubmitJobRequest.version)
    fits: dict[str, bool] = field(default_factory=dict)  # version -> its declaration accepts the params


def pending_of(record: JobRecord) -> Pending:
    """What the dispatcher keeps of a stored job it drives."""
    request = worker_pb2.ExecuteRequest(job_id=record.job_id, workflow_type=record.workflow_type, params=record.params)
    return Pending(
        record.job_id,
        record.workflow_type,
        request,
        record.timeout_s,
        effective_max_attempts(record.max_attempts),
        attempts=record.attempts,
        trace_parent=record.trace_parent,
        ready_at=time.monotonic(),
        owner=owner_of(record.labels),
        priority=priority_of(record.labels),
        enqueued_at=record.created_at.timestamp(),
        requirement=stored_requirement(record.labels),
    )


class Call(Protocol):
    """A worker's Execute or Attach stream: a gRPC call, or one over the instance's Session."""

    async def read(self) -> Any: ...
    def cancel(self) -> bool: ...


@dataclass(eq=False)
class Attempt:
    """One running attempt of a job on one instance; its number is its job's count of attempts
    (a job runs one attempt at a time)."""

    job: Pending
    inst: InstanceState
    task: asyncio.Task[None] | None = None
    call: Call | None = None
    stop_status: S.JobStatus = S.JOB_STATUS_UNSPECIFIED  # CANCELLED or TIMED_OUT once asked to stop
    stop_reason: str = ""
    outcome: Outcome = Outcome.LOST  # how it ended, for the store's attempt record
    outcome_reason: str = ""
    forced: bool = False
    worker_seq: int = 0  # last WorkerEvent seq consumed (where an Attach would resume)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    resumed: bool = False  # taken over from the store (re-attached): already recorded
    timeout_in: float | None = None  # seconds left of the job's timeout when resumed
    abandoned: bool = False  # given up by this gateway while it may run on (lease lost, store down)
    reattaches: int = 0  # Attach calls made after the stream broke
    unstarted: bool = False  # re-attached, but its worker never had the job: it did not happen
    span: Any = None  # the "job.attempt" span
    writes: list[asyncio.Future] = field(default_factory=list)  # job event writes not yet awaited
    recording: asyncio.Future | None = None  # the dispatch record's writes (Runner.begin)
    record_parts: tuple[asyncio.Future, ...] = ()  # its writes one by one (awaited before it)
    ended: bool = False  # the attempt's end is recorded (with the terminal write)

    @property
    def number(self) -> int:
        """Which attempt of its job this is (1 for the first)."""
        return self.job.attempts

    # Writes in flight: a job's writes go to the store in order (tasks start in creation
    # order) without each waiting for the commit of the one before.
    def write_soon(self, store: Any, events: list, update: Any) -> None:
        """Start appending `events` to the job; a failure surfaces in check_writes/settle."""
        self.writes.append(asyncio.ensure_future(store.append(self.job.job_id, events, update)))

    def check_writes(self) -> None:
        """Raise the failure of a finished write; forget the writes that succeeded."""
        if self.writes and self.writes[0].done():
            still = []
            for task in self.writes:
                if not task.done():
                    still.append(task)
                elif (exc := task.exception()) is not None:
                    self.writes = [t for t in self.writes if t is not task]
                    raise exc
            self.writes = still

    async def settle(self) -> None:
        """Wait for the writes in flight; raise the first failure."""
        writes, self.writes = self.writes, []
        if writes:
            for outcome in await asyncio.gather(*writes, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome

    def drop_writes(self) -> None:
        """Leaving with an error: the writes in flight go on; their failures are only logged."""
        writes, self.writes = self.writes, []
        for task in writes:
            task.add_done_callback(_quiet)


def _quiet(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("job write failed after its attempt ended: %r", task.exception())


class Lost(Exception):
    """The attempt ended without an outcome from the worker (connection, stream, overload)."""


def open_attempt_span(job: Pending, instance: str, number: int, request: worker_pb2.ExecuteRequest) -> Any:
    """Start the attempt's ``job.attempt`` span (child of the job's submit span) and put its
    trace context into the worker request, so the worker's spans join the job's trace."""
    span = start_job_span(
        "job.attempt",
        job_id=job.job_id,
        workflow_type=job.workflow_type,
        attempt=number,
        instance=instance,
        parent=job.trace_parent or None,
    )
    with use_span(span):
        request.trace_context.clear()
        request.trace_context.update(inject_context())
    return span
