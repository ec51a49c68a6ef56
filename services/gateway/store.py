"""The job store interface: what the gateway needs to keep jobs and their numbered events.

Adapters: :class:`MemoryJobStore` (in ``_memory.py``; tests and benchmarks) and the SQL store
(SQLite file by default, PostgreSQL via ``DATABASE_URL``). Every adapter passes the same test
suite (tests/test_store_contract.py).

Events are ``workmesh.v1.JobEvent`` messages; the store assigns their ``seq`` (1, 2, 3, ... per
job, no gaps) and applies the job fields that change with them in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workmesh.v1 import common_pb2

TERMINAL = frozenset({
    common_pb2.JOB_STATUS_SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED,
    common_pb2.JOB_STATUS_CANCELLED,
    common_pb2.JOB_STATUS_TIMED_OUT,
})


@dataclass
class JobRecord:
    """One job as stored. Proto-typed fields are stored serialized by SQL adapters."""

    job_id: str
    workflow_type: str
    params: dict[str, common_pb2.ParamValue]
    status: int = common_pb2.JOB_STATUS_QUEUED
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
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

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


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


class JobStore(Protocol):
    """Persistence of jobs and job events. All methods are coroutines safe to call concurrently."""

    async def create(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new QUEUED job with its first event (status QUEUED, seq 1).

        Returns ``(job, True)``; when ``job.idempotency_key`` was seen before, returns
        ``(earlier_job, False)`` and stores nothing.
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        ...

    async def list(self, *, workflow_type: str | None = None, statuses: Sequence[int] = (),
                   limit: int = 100, after: str | None = None) -> list[JobRecord]:
        """Jobs newest first, filtered; ``after`` is the job_id the previous page ended with."""
        ...

    async def append(self, job_id: str, events: Sequence[common_pb2.JobEvent],
                     update: JobUpdate | None = None) -> list[common_pb2.JobEvent]:
        """Number and store events and apply `update` atomically; return the numbered events.

        Raises:
            workmesh.workers.errors.NotFound: unknown job.
            workmesh.workers.errors.FailedPrecondition: the job is already terminal.
        """
        ...

    async def events(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[common_pb2.JobEvent]:
        """Stored events with seq > after_seq, in order."""
        ...

    async def wait(self, job_id: str, after_seq: int, timeout: float) -> None:
        """Return when the job may have events past `after_seq` (or after `timeout` seconds)."""
        ...

    async def delete(self, job_id: str) -> bool:
        """Remove the job and its events; False when unknown."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
