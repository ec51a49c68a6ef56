"""MemoryJobStore: the JobStore kept in process memory (tests, benchmarks, ``DATABASE_URL`` unset).

Every operation is O(1) per event or per returned job, so the store never becomes the limit
of the dispatch benchmark. Waiters are woken by futures the moment an event is appended:
nothing polls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence

from workmesh.services.core.auth import MemoryGrants, MemoryTokens
from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway.store import REOPENABLE, AttemptRecord, JobRecord, JobUpdate, Reopen, reopen_refusal
from workmesh.services.gateway.store._audit import MemoryAudit
from workmesh.services.gateway.store._entries import Entry, entry_of
from workmesh.services.gateway.store._memory_outbox import MemoryOutboxMixin
from workmesh.v1 import common_pb2

_UPDATE_FIELDS = tuple(f.name for f in dataclasses.fields(JobUpdate))


class _Entry:
    """A job with its events and the futures of the callers waiting for more."""

    __slots__ = ("attempts", "events", "index", "lease_owner", "lease_until", "record", "waiters")

    def __init__(self, record: JobRecord, index: int) -> None:
        self.record = record
        self.events: list[common_pb2.JobEvent] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.index = index
        self.attempts: dict[int, AttemptRecord] = {}
        self.lease_owner: str | None = None
        self.lease_until = 0.0  # time.time() of expiry

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            _resolve(fut)


def _carries(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def _copy(record: JobRecord) -> JobRecord:
    # Callers get a snapshot: mutating it must not change the stored job behind the store's back.
    # (A __dict__ copy: dataclasses.replace re-runs __init__ and costs several times more.)
    copy = object.__new__(JobRecord)
    copy.__dict__.update(record.__dict__)
    copy.params = dict(record.params)
    copy.labels = dict(record.labels)
    return copy


class MemoryJobStore(MemoryOutboxMixin, MemoryTokens, MemoryAudit, MemoryGrants):
    """A JobStore in memory. Not shared between processes; lost on exit.

    Jobs are listed newest first by creation order; ``list_jobs(after=job_id)`` continues after
    that job. Deleted jobs leave a hole in the order list that listing skips.
    """

    def __init__(self) -> None:
        MemoryTokens.__init__(self)  # API tokens (core.auth's in-memory TokenStore)
        MemoryAudit.__init__(self)
        MemoryGrants.__init__(self)  # sharing (core.auth's in-memory GrantStore)
        self._jobs: dict[str, _Entry] = {}
        self._order: list[str | None] = []  # job ids by creation; None where a job was deleted
        self._keys: dict[str, str] = {}  # idempotency key -> job id
        self._children: dict[str, list[str]] = {}  # parent job id -> its steps' job ids, oldest first
        self._live: dict[str, None] = {}  # non-terminal job ids, oldest first (for claim)
        self._types: dict[str, tuple[common_pb2.WorkflowType, dt.datetime]] = {}

    async def create(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new QUEUED job with its first event; an idempotency key seen before wins."""
        if job.idempotency_key:
            earlier = self._keys.get(job.idempotency_key)
            if earlier is not None and earlier in self._jobs:
                return _copy(self._jobs[earlier].record), False
        if job.job_id in self._jobs:
            raise FailedPrecondition(f"job {job.job_id} exists already")
        record = _copy(job)
        record.status = common_pb2.JOB_STATUS_QUEUED
        record.updated_at = record.created_at
        record.lease_owner = record.lease_until = None  # the lease lives in the entry
        entry = _Entry(record, len(self._order))
        if job.lease_owner and job.lease_until is not None:
            entry.lease_owner, entry.lease_until = job.lease_owner, job.lease_until.timestamp()
        event = common_pb2.JobEvent(seq=1, status=common_pb2.StatusChange(status=common_pb2.JOB_STATUS_QUEUED))
        event.time.FromDatetime(record.created_at)
        entry.events.append(event)
        record.last_seq = 1
        self._jobs[record.job_id] = entry
        self._order.append(record.job_id)
        self._live[record.job_id] = None
        if job.idempotency_key:
            self._keys[job.idempotency_key] = record.job_id
        if record.parent_id:
            self._children.setdefault(record.parent_id, []).append(record.job_id)
        if record.notify:
            self._outbox_created(record.job_id, record.notify)
        if record.audit is not None:
            self._append_audit(record.audit)
            record.audit = None
        return _copy(record), True

    async def get_by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job created with this idempotency key, or None."""
        job_id = self._keys.get(idempotency_key) if idempotency_key else None
        return None if job_id is None else await self.get(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        entry = self._jobs.get(job_id)
        return _copy(entry.record) if entry is not None else None

    async def children(self, parent_id: str) -> list[JobRecord]:
        """The jobs created with ``parent_id``, oldest first."""
        return [_copy(self._jobs[c].record) for c in self._children.get(parent_id, ()) if c in self._jobs]

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
        """Jobs newest first, filtered; ``after`` is the job id the previous page ended with."""
        if after is not None:
            entry = self._jobs.get(after)
            if entry is None:
                return []
            start = entry.index - 1
        else:
            start = len(self._order) - 1
        wanted = set(statuses)
        out: list[JobRecord] = []
        for i in range(start, -1, -1):
            if len(out) >= limit:
                break
            job_id = self._order[i]
            if job_id is None:
                continue
            record = self._jobs[job_id].record
            if workflow_type and record.workflow_type != workflow_type:
                continue
            if wanted and record.status not in wanted:
                continue
            if parent_id is not None and record.parent_id != parent_id:
                continue
            if labels and not _carries(record.labels or {}, labels):
                continue
            out.append(_copy(record))
        return out

    async def append(
        self, job_id: str, events: Sequence[common_pb2.JobEvent], update: JobUpdate | None = None
    ) -> list[common_pb2.JobEvent]:
        """Number and store `events`, apply `update`, wake the waiters of the job."""
        entry = self._jobs.get(job_id)
        if entry is None:
            raise NotFound(f"job {job_id} not found")
        record = entry.record
        if record.terminal:
            raise FailedPrecondition(f"job {job_id} is already finished")
        now_ns = time.time_ns()
        seq = record.last_seq
        for event in events:
            seq += 1
            event.seq = seq
            if not event.HasField("time"):
                event.time.FromNanoseconds(now_ns)
            entry.events.append(event)
        record.last_seq = seq
        if update is not None:
            for name in _UPDATE_FIELDS:
                value = getattr(update, name)
                if value is not None:
                    setattr(record, name, value)
        record.updated_at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
        if record.terminal:
            self._live.pop(job_id, None)
            entry.lease_owner = None
        entry.wake()
        return list(events)

    async def reopen(self, job_id: str, event: common_pb2.JobEvent, reopen: Reopen) -> JobRecord:
        """Make an ended job QUEUED again for a new attempt (see JobStore.reopen)."""
        entry = self._jobs.get(job_id)
        if entry is None:
            raise NotFound(f"job_id: no job {job_id!r}")
        record = entry.record
        if record.status not in REOPENABLE:
            raise reopen_refusal(job_id, record.status)
        now_ns = time.time_ns()
        record.last_seq += 1
        event.seq = record.last_seq
        if not event.HasField("time"):
            event.time.FromNanoseconds(now_ns)
        entry.events.append(event)
        record.status = common_pb2.JOB_STATUS_QUEUED
        record.finished_at = record.not_before = None
        record.result = record.error = record.progress = None
        record.worker_seq = 0
        record.max_attempts = reopen.max_attempts
        record.labels = dict(reopen.labels)
        record.updated_at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
        entry.lease_owner, entry.lease_until = reopen.lease_owner, reopen.lease_until.timestamp()
        self._live[job_id] = None
        entry.wake()
        return _copy(record)

    async def events(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[common_pb2.JobEvent]:
        """Stored events with seq > after_seq, in order (seq n is at index n-1)."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return []
        return entry.events[after_seq : after_seq + limit]

    async def entries(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """:meth:`events` as serialized :class:`Entry` tuples (what the progress fan-out sends)."""
        return [entry_of(event) for event in await self.events(job_id, after_seq, limit)]

    async def peek(self, job_id: str) -> tuple[int, bool] | None:
        """(last_seq, terminal) of the job, or None when unknown."""
        entry = self._jobs.get(job_id)
        return None if entry is None else (entry.record.last_seq, entry.record.terminal)

    async def wait(self, job_id: str, after_seq: int, timeout: float) -> None:
        """Return once the job has events past `after_seq`, is deleted, or `timeout` passed."""
        entry = self._jobs.get(job_id)
        if entry is None or entry.record.last_seq > after_seq:
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        entry.waiters.append(fut)
        # A timer resolving the same future is cheaper than wait_for's extra future and callbacks.
        timer = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if not fut.done():  # the waiting task was cancelled
                fut.cancel()
            if fut in entry.waiters:
                entry.waiters.remove(fut)

    async def delete(self, job_id: str) -> bool:
        """Remove the job and its events; waiters return at once."""
        entry = self._jobs.pop(job_id, None)
        if entry is None:
            return False
        self._order[entry.index] = None
        self._live.pop(job_id, None)
        self._children.pop(job_id, None)
        key = entry.record.idempotency_key
        if key and self._keys.get(key) == job_id:
            del self._keys[key]
        if entry.record.notify:
            self._outbox_deleted(job_id)
        entry.wake()
        return True

    # -- attempts ----------------------------------------------------------------------------
    async def start_attempt(
        self, job_id: str, attempt: int, instance_id: str, started_at: dt.datetime | None = None
    ) -> None:
        """Record that attempt `attempt` of the job started on `instance_id`."""
        entry = self._entry(job_id)
        entry.attempts[attempt] = AttemptRecord(job_id, attempt, instance_id, started_at or _utcnow())

    async def end_attempt(
        self, job_id: str, attempt: int, outcome: str, reason: str = "", ended_at: dt.datetime | None = None
    ) -> None:
        """Record how attempt `attempt` ended."""
        record = self._entry(job_id).attempts.get(attempt)
        if record is None:
            raise NotFound(f"job {job_id} has no attempt {attempt}")
        record.outcome, record.reason, record.ended_at = outcome, reason, ended_at or _utcnow()

    async def attempts(self, job_id: str) -> list[AttemptRecord]:
        """The job's attempts by number; empty for an unknown job."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return []
        return [dataclasses.replace(entry.attempts[n]) for n in sorted(entry.attempts)]

    # -- leases (one process: they only matter to code written against the protocol) ----------
    async def claim(
        self, owner: str, limit: int, lease_seconds: float, types: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Lease up to `limit` free non-terminal jobs to `owner`, oldest first."""
        now = time.time()
        wall = _utcnow()
        wanted = set(types) if types is not None else None
        out: list[JobRecord] = []
        for job_id in self._live:
            if len(out) >= limit:
                break
            entry = self._jobs[job_id]
            record = entry.record
            if entry.lease_owner is not None and entry.lease_until > now:
                continue
            if wanted is not None and record.workflow_type not in wanted:
                continue
            if record.not_before is not None and record.not_before > wall:
                continue
            entry.lease_owner, entry.lease_until = owner, now + lease_seconds
            out.append(_copy(record))
        return out

    async def renew(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend `owner`'s leases; the ids it still holds."""
        until = time.time() + lease_seconds
        held = set()
        for job_id in job_ids:
            entry = self._jobs.get(job_id)
            if entry is not None and entry.lease_owner == owner and not entry.record.terminal:
                entry.lease_until = until
                held.add(job_id)
        return held

    async def remember_types(self, items: Sequence[tuple[common_pb2.WorkflowType, dt.datetime]]) -> None:
        """Keep each type's declaration with when a worker last served it (this process only)."""
        for declaration, seen in items:
            earlier = self._types.get(declaration.name)
            if earlier is None or earlier[1] <= seen:
                self._types[declaration.name] = (declaration, seen)

    async def known_types(self) -> list[tuple[common_pb2.WorkflowType, dt.datetime]]:
        """Every type remembered, with when a worker last served it."""
        return list(self._types.values())

    async def forget_types(self, names: Sequence[str], before: dt.datetime) -> None:
        """Forget the types of `names` that nobody served since `before`."""
        for name in names:
            if name in self._types and self._types[name][1] < before:
                del self._types[name]

    async def leased(self, owner: str) -> set[str]:
        """Ids of the non-terminal jobs whose unexpired lease `owner` holds (the self-check)."""
        now = time.time()
        return {
            job_id
            for job_id in self._live
            if self._jobs[job_id].lease_owner == owner and self._jobs[job_id].lease_until > now
        }

    async def release(self, owner: str, job_ids: Sequence[str]) -> None:
        """Give up `owner`'s leases on `job_ids`."""
        for job_id in job_ids:
            entry = self._jobs.get(job_id)
            if entry is not None and entry.lease_owner == owner:
                entry.lease_owner = None

    async def finished_before(self, cutoff: dt.datetime, limit: int = 500) -> list[str]:
        """Ids of terminal jobs that finished (else were last updated) before `cutoff`, oldest first."""

        def finished(entry: _Entry) -> dt.datetime:
            return entry.record.finished_at or entry.record.updated_at or entry.record.created_at

        old = sorted((e for e in self._jobs.values() if e.record.terminal and finished(e) < cutoff), key=finished)
        return [e.record.job_id for e in old[:limit]]

    async def delete_finished_before(self, cutoff: dt.datetime) -> int:
        """Delete terminal jobs that finished (else were last updated) before `cutoff`."""
        old = await self.finished_before(cutoff, limit=len(self._jobs))
        for job_id in old:
            await self.delete(job_id)
        return len(old)

    def _entry(self, job_id: str) -> _Entry:
        entry = self._jobs.get(job_id)
        if entry is None:
            raise NotFound(f"job {job_id} not found")
        return entry

    async def close(self) -> None:
        """Wake every waiter; nothing else to release."""
        for entry in self._jobs.values():
            entry.wake()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
