"""The job store interface: what the gateway needs to keep jobs and their numbered events.

Adapters: :class:`MemoryJobStore` (in ``_memory.py``; tests and benchmarks) and the SQL store
(SQLite file by default, PostgreSQL via ``DATABASE_URL``). Every adapter passes the same test
suite (tests/store/test_store_contract.py).

Events are ``workmesh.v1.JobEvent`` messages; the store assigns their ``seq`` (1, 2, 3, ... per
job, no gaps) and applies the job fields that change with them in the same transaction.

Beyond jobs and events the store keeps the attempts of each job (which instance ran it, when,
how it ended), row leases that let several gateway replicas share one database (each
non-terminal job is driven by exactly one replica at a time; a dead replica's leases expire
and another claims them) and a retention sweep for the optional TTL of finished jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workmesh.services.core.errors import FailedPrecondition
from workmesh.services.core.limits import TERMINAL
from workmesh.services.gateway.store._audit import AuditEntry
from workmesh.services.gateway.store._outbox import Delivery, NotifyTarget
from workmesh.v1 import common_pb2


@dataclass
class JobRecord:
    """One job as stored. Proto-typed fields are stored serialized by SQL adapters."""

    job_id: str
    workflow_type: str
    params: dict[str, common_pb2.ParamValue]
    status: int = common_pb2.JOB_STATUS_QUEUED
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    updated_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    timeout_s: float | None = None
    max_attempts: int = 3
    attempts: int = 0
    instance_id: str = ""
    progress: common_pb2.Progress | None = None
    result: common_pb2.JobResult | None = None
    error: common_pb2.JobError | None = None
    last_seq: int = 0
    trace_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    not_before: dt.datetime | None = None  # retry backoff: do not dispatch before this time
    trace_parent: str = ""  # W3C traceparent of the job's submit span (its trace crosses processes)
    worker_seq: int = 0  # last WorkerEvent seq of the current attempt stored (Attach resumes after it)
    # Lease given with create (the replica that accepted the job drives it); claim/renew later.
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None
    # Whom to notify when the job ends; stored with the job as its outbox rows (store/_outbox.py).
    notify: tuple[NotifyTarget, ...] = ()
    # The submit's audit entry, stored with the job in the same transaction when create stores
    # it (not when an idempotency key finds an earlier job); given to create, never read back.
    audit: AuditEntry | None = None
    # A step of a workflow (issue 13): the job whose handler asked for it, and the step's name
    # within that job. Empty for a job submitted by a client.
    parent_id: str = ""
    step_name: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class AttemptRecord:
    """One attempt to run a job on a worker instance.

    ``outcome`` is empty while the attempt runs; afterwards a short upper-case word chosen by
    the gateway, e.g. ``"SUCCEEDED"``, ``"FAILED"``, ``"LOST"``, ``"CANCELLED"``, ``"TIMED_OUT"``.
    """

    job_id: str
    attempt: int
    instance_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    outcome: str = ""
    reason: str = ""


@dataclass
class JobUpdate:
    """Job fields to change together with appended events; None leaves a field as it is."""

    status: int | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    attempts: int | None = None
    instance_id: str | None = None
    progress: common_pb2.Progress | None = None
    result: common_pb2.JobResult | None = None
    error: common_pb2.JobError | None = None
    not_before: dt.datetime | None = None
    worker_seq: int | None = None


@dataclass(frozen=True)
class Reopen:
    """What :meth:`JobStore.reopen` sets on the job it makes QUEUED again.

    Attributes:
        max_attempts: the job's new attempt budget (its attempts so far plus the type's budget).
        labels: the job's labels from now on.
        lease_owner: the replica that drives the job from now on.
        lease_until: until when its lease holds.
    """

    max_attempts: int
    labels: dict[str, str]
    lease_owner: str
    lease_until: dt.datetime


REOPENABLE = (common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_CANCELLED, common_pb2.JOB_STATUS_TIMED_OUT)


def reopen_refusal(job_id: str, status: int) -> FailedPrecondition:
    """Why a job in `status` is not reopened."""
    name = common_pb2.JobStatus.Name(status).removeprefix("JOB_STATUS_")
    if status == common_pb2.JOB_STATUS_SUCCEEDED:
        return FailedPrecondition(
            f"job_id: job {job_id!r} SUCCEEDED: only a failed, cancelled or timed-out job is retried"
        )
    return FailedPrecondition(f"job_id: job {job_id!r} is {name}: only a job that has ended can be retried")


class JobStore(Protocol):
    """Persistence of jobs and job events. All methods are coroutines safe to call concurrently."""

    async def create(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new QUEUED job with its first event (status QUEUED, seq 1).

        When ``job.lease_owner`` and ``job.lease_until`` are set the job is created leased to
        that owner (the replica that accepted it drives it; see :meth:`claim`).

        Returns ``(job, True)``; when ``job.idempotency_key`` was seen before, returns
        ``(earlier_job, False)`` and stores nothing.
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        ...

    async def get_by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job created with this idempotency key, or None (no such key, or its job deleted)."""
        ...

    async def list_jobs(
        self,
        *,
        workflow_type: str | None = None,
        statuses: Sequence[int] = (),
        limit: int = 100,
        after: str | None = None,
        labels: Mapping[str, str] | None = None,
        parent_id: str | None = None,
    ) -> list[JobRecord]:
        """Jobs newest first, filtered; ``after`` is the job_id the previous page ended with.

        ``labels``: only jobs carrying every one of these (key, value) pairs; ``parent_id``: only
        the steps of that job.
        """
        ...

    async def append(
        self, job_id: str, events: Sequence[common_pb2.JobEvent], update: JobUpdate | None = None
    ) -> list[common_pb2.JobEvent]:
        """Number and store events and apply `update` atomically; return the numbered events.

        Raises:
            workmesh.services.core.errors.NotFound: unknown job.
            workmesh.services.core.errors.FailedPrecondition: the job is already terminal.
        """
        ...

    async def events(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[common_pb2.JobEvent]:
        """Stored events with seq > after_seq, in order."""
        ...

    async def children(self, parent_id: str) -> list[JobRecord]:
        """The jobs created with ``parent_id`` (the steps of that job), oldest first."""
        ...

    # Optional: ``async def peek(job_id) -> (last_seq, terminal) | None`` — the same as from
    # :meth:`get`, cheaper (WatchJob uses it when present).
    # Optional: ``async def entries(job_id, after_seq=0, limit=1000) -> list[Entry]`` — the
    # events of :meth:`events` serialized (store/_entries.py), from the bytes the store keeps
    # when it keeps them so (the progress fan-out uses it when present).
    # Optional: ``async def leased(owner) -> set[str]`` — the non-terminal jobs whose unexpired
    # lease `owner` holds (the gateway's self-check, CheckInvariants).
    # Optional: the workflow types seen — ``remember_types([(WorkflowType, last_seen)])``,
    # ``known_types() -> [(WorkflowType, last_seen)]``, ``forget_types(names, before)`` — so a
    # restarted gateway knows the types whose workers are down (discovery/_remembered.py).

    async def reopen(self, job_id: str, event: common_pb2.JobEvent, reopen: Reopen) -> JobRecord:
        """Make an ended job QUEUED again for a new attempt (``RetryJob``), in one transaction.

        Only a job that ended FAILED, CANCELLED or TIMED_OUT is reopened: `event` (its status
        QUEUED) is numbered after its last event, its result, error, progress, finish time and
        backoff are cleared and the fields of `reopen` applied. Its attempts, events and
        idempotency key stay: the job keeps its id and the numbering of its events.

        Raises:
            workmesh.services.core.errors.NotFound: unknown job.
            workmesh.services.core.errors.FailedPrecondition: the job has not ended, or it succeeded.
        """
        ...

    async def wait(self, job_id: str, after_seq: int, timeout: float) -> None:
        """Return when the job may have events past `after_seq` (or after `timeout` seconds)."""
        ...

    async def delete(self, job_id: str) -> bool:
        """Remove the job and its events; False when unknown."""
        ...

    # --- attempts -------------------------------------------------------------------------

    async def start_attempt(
        self, job_id: str, attempt: int, instance_id: str, started_at: dt.datetime | None = None
    ) -> None:
        """Record that attempt number `attempt` (1, 2, ...) of the job started on `instance_id`.

        Recording the same attempt again overwrites it (safe to retry).
        `started_at` defaults to now. The job's own ``attempts``/``instance_id`` fields are
        changed through :meth:`append` with a :class:`JobUpdate`, not here.

        Raises:
            workmesh.services.core.errors.NotFound: unknown job.
        """
        ...

    async def end_attempt(
        self, job_id: str, attempt: int, outcome: str, reason: str = "", ended_at: dt.datetime | None = None
    ) -> None:
        """Record how an attempt ended (`outcome`, see :class:`AttemptRecord`); `ended_at` defaults to now.

        Raises:
            workmesh.services.core.errors.NotFound: unknown job or attempt.
        """
        ...

    async def attempts(self, job_id: str) -> list[AttemptRecord]:
        """The job's attempts by attempt number; empty for an unknown job."""
        ...

    # --- row leases (several gateway replicas on one database) ----------------------------

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, types: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Lease up to `limit` jobs to `owner` for `lease_seconds` and return them, oldest first.

        Claimable: non-terminal (QUEUED, DISPATCHED or RUNNING — the latter two are jobs whose
        gateway died and need re-attaching), lease free or expired (a lease `owner` itself holds
        and has not let expire is not returned again), ``not_before`` unset or passed, and
        ``workflow_type`` in `types` when given. Two owners claiming at the same time get
        disjoint sets. A job that turns terminal through :meth:`append` loses its lease.
        """
        ...

    async def renew(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend `owner`'s leases to now + `lease_seconds`; return the ids `owner` still holds.

        A lease that expired but was not claimed by anyone else is renewed too; ids missing from
        the result were claimed by another owner, released, finished or deleted.
        """
        ...

    async def release(self, owner: str, job_ids: Sequence[str]) -> None:
        """Give up `owner`'s leases on `job_ids` (e.g. when draining); others are untouched."""
        ...

    # --- retention ------------------------------------------------------------------------

    async def finished_before(self, cutoff: dt.datetime, limit: int = 500) -> list[str]:
        """Ids of terminal jobs that finished (else were last updated) before `cutoff`, oldest first."""
        ...

    async def delete_finished_before(self, cutoff: dt.datetime) -> int:
        """Delete terminal jobs (with events and attempts) that finished before `cutoff`.

        A terminal job without ``finished_at`` counts by its ``updated_at``. Returns how many
        jobs were deleted.
        """
        ...

    # --- notification outbox (store/_outbox.py) ---------------------------------------------

    async def claim_deliveries(self, limit: int, hold_seconds: float) -> list[Delivery]:
        """Claim up to `limit` due outbox rows: pending, of a terminal job, due time passed.

        Each claimed row's due time moves `hold_seconds` ahead (so a claimer that dies leaves it
        due again then), and its ``first_at`` is set at its first claim. Concurrent claimers get
        disjoint rows.
        """
        ...

    async def retry_delivery(self, delivery_id: str, next_at: dt.datetime, error: str) -> None:
        """Count a failed attempt of the row and make it due again at `next_at`."""
        ...

    async def end_delivery(
        self, delivery_id: str, delivered: bool, event: common_pb2.JobEvent
    ) -> common_pb2.JobEvent | None:
        """Mark the row delivered or given up and append `event` (its ``notification`` outcome)
        to the job's events after the terminal status, in one transaction. Returns the numbered
        event; None when the row is gone (the job was deleted) or already ended.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
