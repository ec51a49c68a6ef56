"""The SQL job store's statements: write operations (run by the group-commit writer) and reads.

Every write operation runs inside a transaction shared with the other operations of its batch.
So that one caller's failure cannot spoil the batch, an operation that fails on purpose
(NotFound, FailedPrecondition) checks before it writes and writes nothing. The same statements
serve SQLite and PostgreSQL: ``FOR UPDATE SKIP LOCKED`` renders only on PostgreSQL, and SQLite
needs none because its writer holds the database's write lock for the whole transaction. Only
for speed does PostgreSQL fold runs of creates and appends into single statements
(``_fold``); the contract tests hold both forms to the same results.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.dialects import postgresql, sqlite

from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway.store import AttemptRecord, AuditEntry, JobRecord, JobUpdate
from workmesh.services.gateway.store.sql._audit import AUDIT_COLUMNS, INSERT_AUDIT_SQLITE, audit_log, audit_row
from workmesh.services.gateway.store.sql._labels import label_equals
from workmesh.services.gateway.store.sql._pipeline import Query, pg_sql
from workmesh.services.gateway.store.sql._schema import (
    ACTIVE,
    TERMINAL_STATUSES,
    attempts,
    event_from_payload,
    job_events,
    jobs,
    record_to_row,
    row_to_attempt,
    row_to_record,
    set_timestamp,
    sqlite_timestamp,
    update_values,
)
from workmesh.v1 import common_pb2

UTC = dt.UTC
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


class Batch:
    """What the operations of one transaction share.

    Attributes:
        now: one clock reading for the whole batch.
        touched: job id -> last seq after this batch (-1: deleted), for waking waiters.
        marker: (job_id, seq, payload) of the first event written — after a commit whose outcome
            is unknown (the connection died during COMMIT), finding it tells whether the batch
            is in the database.
    """

    def __init__(self, dialect: str, cursor: sqlite3.Cursor | None = None) -> None:
        self.dialect = dialect
        self.now = dt.datetime.now(UTC)
        self.touched: dict[str, int] = {}
        self.marker: tuple[str, int, bytes] | None = None
        self._event_rows: list[Any] = []
        self._audit_rows: list[dict[str, Any]] = []
        # SQLite: the transaction's sqlite3 cursor; events go through it as plain tuples.
        self.cursor = cursor
        self.now_text = sqlite_timestamp(self.now) if cursor is not None else None
        self._now_pb: Timestamp | None = None

    def stamp(self, event: common_pb2.JobEvent) -> bool:
        """Give an event without a time the batch's time; True if it had none."""
        if event.HasField("time"):
            return False
        if self._now_pb is None:
            self._now_pb = Timestamp()
            set_timestamp(self._now_pb, self.now)
        event.time.CopyFrom(self._now_pb)
        return True

    def add_event(
        self, job_id: str, event: common_pb2.JobEvent, now: bool = False, at: dt.datetime | None = None
    ) -> None:
        """Queue a numbered event for the batch's multi-row insert (`now`: stamped by :meth:`stamp`;
        `at`: its time, when the caller has it as a datetime)."""
        payload = payload_of(event)
        self.note_written(job_id, event.seq, payload)
        kind = event.WhichOneof("payload") or ""
        if self.cursor is not None:
            stamp = self.now_text if now else sqlite_timestamp(event.time.ToDatetime() if at is None else at)
            self._event_rows.append((job_id, event.seq, kind, stamp, payload))
        else:
            self._event_rows.append(
                {
                    "job_id": job_id,
                    "seq": event.seq,
                    "kind": kind,
                    "time": event.time.ToDatetime(UTC) if at is None else _aware(at),
                    "payload": payload,
                }
            )

    def note_written(self, job_id: str, seq: int, payload: bytes) -> None:
        """Remember the batch's first event as its commit marker."""
        if self.marker is None:
            self.marker = (job_id, seq, payload)

    def add_audit(self, entry: AuditEntry) -> None:
        """Queue an audit entry for the batch's insert (in this transaction; see ``_audit``)."""
        self._audit_rows.append(audit_row(entry))

    def flush_events(self, conn: sa.Connection) -> None:
        """Insert the events (and audit entries) collected so far: one multi-row insert each."""
        if self._audit_rows:
            if self.cursor is not None:
                self.cursor.executemany(INSERT_AUDIT_SQLITE, [tuple(r.values()) for r in self._audit_rows])
            else:
                conn.execute(audit_log.insert(), self._audit_rows)
            self._audit_rows = []
        if not self._event_rows:
            return
        if self.cursor is not None:
            self.cursor.executemany(_INSERT_EVENTS_SQLITE, self._event_rows)
        elif self.dialect == "postgresql":
            # Arrays keep the statement text constant, so the driver parses and the server
            # prepares it once, whatever the number of rows.
            conn.execute(_INSERT_EVENTS_PG, {name: [row[name] for row in self._event_rows] for name in _EVENT_COLUMNS})
        else:
            conn.execute(_INSERT_EVENTS, self._event_rows)
        self._event_rows = []

    def pg_queries(self) -> list[Query]:
        """PostgreSQL: the audit entries and events collected so far as queries (emptied here),
        for a pipelined commit to send with COMMIT; the same inserts :meth:`flush_events` runs."""
        queries = []
        if self._audit_rows:
            params = {name: [row[name] for row in self._audit_rows] for name in AUDIT_COLUMNS}
            queries.append(Query(_INSERT_AUDIT_PG, params))
            self._audit_rows = []
        if self._event_rows:
            params = {name: [row[name] for row in self._event_rows] for name in _EVENT_COLUMNS}
            queries.append(Query(_INSERT_EVENTS_PG_SQL, params))
            self._event_rows = []
        return queries

    def insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)


# Hot-path statements are built once: SQLAlchemy then only looks up their compiled form. An
# UPDATE executed with extra column-named parameters sets those columns too (the JobUpdate).
_INSERT_JOB = {
    "postgresql": postgresql.insert(jobs).on_conflict_do_nothing().returning(jobs.c.pos),
    "sqlite": sqlite.insert(jobs).on_conflict_do_nothing().returning(jobs.c.pos),
}
_APPEND = (
    sa.update(jobs)
    .where(jobs.c.job_id == sa.bindparam("_job_id"), jobs.c.status.between(ACTIVE[0], ACTIVE[-1]))
    .values(last_seq=jobs.c.last_seq + sa.bindparam("_count", type_=sa.BigInteger))
    .returning(jobs.c.last_seq)
)
_INSERT_EVENTS = job_events.insert()
_INSERT_EVENTS_SQLITE = "INSERT INTO job_events (job_id, seq, kind, time, payload) VALUES (?, ?, ?, ?, ?)"
_EVENT_COLUMNS = ("job_id", "seq", "kind", "time", "payload")
_INSERT_EVENTS_PG = sa.text(
    "INSERT INTO job_events (job_id, seq, kind, time, payload) SELECT * FROM unnest(CAST(:job_id AS varchar[]),"
    " CAST(:seq AS bigint[]), CAST(:kind AS varchar[]), CAST(:time AS timestamptz[]), CAST(:payload AS bytea[]))"
)
_INSERT_EVENTS_PG_SQL = pg_sql(_INSERT_EVENTS_PG)
_AUDIT_TYPES = ("float8", "varchar", "varchar", "varchar", "varchar", "varchar", "text")  # of AUDIT_COLUMNS
_INSERT_AUDIT_PG = (
    f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(%({c})s AS {t}[])" for c, t in zip(AUDIT_COLUMNS, _AUDIT_TYPES, strict=True))
    + ")"
)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def payload_of(event: common_pb2.JobEvent) -> bytes:
    """The stored form of an event: the whole message but its seq, which has a column of its own.

    Without the number inside, PostgreSQL can number a batch's events in the statement that
    stores them (see ``_fold``).
    """
    seq = event.seq
    event.seq = 0
    try:
        return event.SerializeToString()
    finally:
        event.seq = seq


def missing_or_finished(conn: sa.Connection, job_id: str) -> Exception:
    """Why an append found no active job: NotFound or FailedPrecondition."""
    status = conn.execute(sa.select(jobs.c.status).where(jobs.c.job_id == job_id)).scalar()
    if status is None:
        return NotFound(f"job {job_id} not found")
    return FailedPrecondition(f"job {job_id} is already finished (status {common_pb2.JobStatus.Name(status)})")


@dataclasses.dataclass
class Create:
    job: JobRecord

    def prepared(self) -> JobRecord:
        """The record as stored: QUEUED with its first event, a private copy of the caller's."""
        job = self.job
        record = copy.copy(job)  # a shallow copy, cheaper than dataclasses.replace (no __init__)
        record.params = dict(job.params)
        record.labels = dict(job.labels)
        record.status = common_pb2.JOB_STATUS_QUEUED
        record.last_seq = 1
        record.updated_at = job.created_at
        record.idempotency_key = job.idempotency_key or None
        return record

    @staticmethod
    def stored(record: JobRecord, batch: Batch) -> tuple[JobRecord, bool]:
        """Add the QUEUED event of a newly inserted job to the batch."""
        event = common_pb2.JobEvent(seq=1, status=common_pb2.StatusChange(status=common_pb2.JOB_STATUS_QUEUED))
        set_timestamp(event.time, record.created_at)
        batch.add_event(record.job_id, event, at=record.created_at)
        batch.touched[record.job_id] = 1
        if record.audit is not None:
            batch.add_audit(record.audit)
            record.audit = None  # a private copy (prepared)
        return record, True

    def run(self, conn: sa.Connection, batch: Batch) -> tuple[JobRecord, bool]:
        record = self.prepared()
        # DO NOTHING covers both unique columns; the loser of an idempotency race waits for the
        # winner's commit on PostgreSQL and then finds its row below.
        if conn.execute(_INSERT_JOB[batch.dialect], record_to_row(record)).first() is None:
            return self.conflict(conn, record)
        return self.stored(record, batch)

    @staticmethod
    def conflict(conn: sa.Connection, record: JobRecord) -> tuple[JobRecord, bool]:
        """The insert found the job id or the idempotency key taken: the earlier job of that key.

        Raises:
            FailedPrecondition: the job id is taken (no key, or not by the key's job).
        """
        if record.idempotency_key:
            row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == record.idempotency_key)).first()
            if row is not None:
                return row_to_record(row), False
        raise FailedPrecondition(f"job {record.job_id} exists already")


@dataclasses.dataclass
class Append:
    job_id: str
    events: Sequence[common_pb2.JobEvent]
    update: JobUpdate | None

    def run(self, conn: sa.Connection, batch: Batch) -> list[common_pb2.JobEvent]:
        count = len(self.events)
        params = update_values(self.update)
        params.update(updated_at=batch.now, _job_id=self.job_id, _count=count)
        # The row lock taken by this UPDATE serialises appends to one job across replicas; the
        # numbers come from the row itself, so there are no gaps and no duplicates.
        row = conn.execute(_APPEND, params).first()
        if row is None:
            raise missing_or_finished(conn, self.job_id)
        seq = row.last_seq - count
        for event in self.events:
            seq += 1
            event.seq = seq
            if not event.HasField("time"):
                event.time.FromDatetime(batch.now)
            batch.add_event(self.job_id, event)
        batch.touched[self.job_id] = row.last_seq
        return list(self.events)


@dataclasses.dataclass
class Delete:
    job_id: str

    def run(self, conn: sa.Connection, batch: Batch) -> bool:
        batch.flush_events(conn)
        conn.execute(job_events.delete().where(job_events.c.job_id == self.job_id))
        conn.execute(attempts.delete().where(attempts.c.job_id == self.job_id))
        deleted = conn.execute(jobs.delete().where(jobs.c.job_id == self.job_id)).rowcount
        if deleted:
            batch.touched[self.job_id] = -1
        return bool(deleted)


@dataclasses.dataclass
class DeleteFinishedBefore:
    cutoff: dt.datetime

    def run(self, conn: sa.Connection, batch: Batch) -> int:
        batch.flush_events(conn)
        ids = read_finished_before(conn, self.cutoff)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            conn.execute(job_events.delete().where(job_events.c.job_id.in_(chunk)))
            conn.execute(attempts.delete().where(attempts.c.job_id.in_(chunk)))
            conn.execute(jobs.delete().where(jobs.c.job_id.in_(chunk)))
            batch.touched.update(dict.fromkeys(chunk, -1))
        return len(ids)


@dataclasses.dataclass
class StartAttempt:
    job_id: str
    attempt: int
    instance_id: str
    started_at: dt.datetime | None

    def run(self, conn: sa.Connection, batch: Batch) -> None:
        batch.flush_events(conn)
        if conn.execute(sa.select(jobs.c.pos).where(jobs.c.job_id == self.job_id)).first() is None:
            raise NotFound(f"job {self.job_id} not found")
        values = {
            "instance_id": self.instance_id,
            "started_at": self.started_at or batch.now,
            "ended_at": None,
            "outcome": "",
            "reason": "",
        }
        stmt = batch.insert(attempts).values(job_id=self.job_id, attempt=self.attempt, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["job_id", "attempt"], set_=values))


@dataclasses.dataclass
class EndAttempt:
    job_id: str
    attempt: int
    outcome: str
    reason: str
    ended_at: dt.datetime | None

    def run(self, conn: sa.Connection, batch: Batch) -> None:
        batch.flush_events(conn)
        changed = conn.execute(
            attempts.update()
            .where(attempts.c.job_id == self.job_id, attempts.c.attempt == self.attempt)
            .values(ended_at=self.ended_at or batch.now, outcome=self.outcome, reason=self.reason)
        ).rowcount
        if not changed:
            raise NotFound(f"attempt {self.attempt} of job {self.job_id} not found")


@dataclasses.dataclass
class Claim:
    owner: str
    limit: int
    lease_seconds: float
    types: Sequence[str] | None

    def run(self, conn: sa.Connection, batch: Batch) -> list[JobRecord]:
        batch.flush_events(conn)
        now = batch.now
        query = (
            sa.select(jobs.c.pos)
            .where(
                jobs.c.status.in_(ACTIVE),
                sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now),
                sa.or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now),
            )
            .order_by(jobs.c.pos)
            .limit(self.limit)
            .with_for_update(skip_locked=True)
        )  # another replica's rows: skip, don't wait
        if self.types is not None:
            query = query.where(jobs.c.workflow_type.in_(list(self.types)))
        positions = conn.execute(query).scalars().all()
        if not positions:
            return []
        until = now + dt.timedelta(seconds=self.lease_seconds)
        rows = conn.execute(
            sa.update(jobs)
            .where(jobs.c.pos.in_(positions))
            .values(lease_owner=self.owner, lease_until=until)
            .returning(*jobs.c)
        ).all()
        return [row_to_record(row) for row in sorted(rows, key=lambda r: r.pos)]


@dataclasses.dataclass
class Renew:
    owner: str
    job_ids: Sequence[str]
    lease_seconds: float

    def run(self, conn: sa.Connection, batch: Batch) -> set[str]:
        batch.flush_events(conn)
        until = batch.now + dt.timedelta(seconds=self.lease_seconds)
        held: set[str] = set()
        ids = list(self.job_ids)
        for start in range(0, len(ids), _CHUNK):
            held.update(
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.lease_owner == self.owner, jobs.c.job_id.in_(ids[start : start + _CHUNK]))
                    .values(lease_until=until)
                    .returning(jobs.c.job_id)
                ).scalars()
            )
        return held


@dataclasses.dataclass
class Release:
    owner: str
    job_ids: Sequence[str]

    def run(self, conn: sa.Connection, batch: Batch) -> None:
        batch.flush_events(conn)
        ids = list(self.job_ids)
        for start in range(0, len(ids), _CHUNK):
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.lease_owner == self.owner, jobs.c.job_id.in_(ids[start : start + _CHUNK]))
                .values(lease_owner=None, lease_until=None)
            )


# --- reads ----------------------------------------------------------------------------------


def read_job(conn: sa.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
    return None if row is None else row_to_record(row)


def read_job_by_key(conn: sa.Connection, idempotency_key: str) -> JobRecord | None:
    row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == idempotency_key)).first()
    return None if row is None else row_to_record(row)


def read_children(conn: sa.Connection, parent_id: str) -> list[JobRecord]:
    query = sa.select(jobs).where(jobs.c.parent_id == parent_id).order_by(jobs.c.pos)
    return [row_to_record(row) for row in conn.execute(query)]


def jobs_query(
    workflow_type: str | None,
    statuses: Sequence[int],
    limit: int,
    after: str | None,
    labels: Mapping[str, str] | None = None,
    parent_id: str | None = None,
) -> sa.Select:
    """The SELECT of :func:`read_jobs` (a test reads its query plan)."""
    query = sa.select(jobs).order_by(jobs.c.pos.desc()).limit(limit)
    if workflow_type:
        query = query.where(jobs.c.workflow_type == workflow_type)
    if parent_id is not None:
        query = query.where(jobs.c.parent_id == parent_id)
    for key, value in (labels or {}).items():
        query = query.where(label_equals(jobs.c.labels, key, value))
    if statuses:
        query = query.where(jobs.c.status.in_(list(statuses)))
    if after is not None:
        # An unknown `after` compares with NULL and yields an empty page, as in MemoryJobStore.
        query = query.where(jobs.c.pos < sa.select(jobs.c.pos).where(jobs.c.job_id == after).scalar_subquery())
    return query


def read_jobs(
    conn: sa.Connection,
    workflow_type: str | None,
    statuses: Sequence[int],
    limit: int,
    after: str | None,
    labels: Mapping[str, str] | None = None,
    parent_id: str | None = None,
) -> list[JobRecord]:
    query = jobs_query(workflow_type, statuses, limit, after, labels, parent_id)
    return [row_to_record(row) for row in conn.execute(query)]


def read_events(conn: sa.Connection, job_id: str, after_seq: int, limit: int) -> list[common_pb2.JobEvent]:
    rows = conn.execute(
        sa.select(job_events.c.seq, job_events.c.payload)
        .where(job_events.c.job_id == job_id, job_events.c.seq > after_seq)
        .order_by(job_events.c.seq)
        .limit(limit)
    )
    events = []
    for seq, payload in rows:
        event = event_from_payload(payload)
        event.seq = seq
        events.append(event)
    return events


def read_leased(conn: sa.Connection, owner: str) -> set[str]:
    """Ids of the non-terminal jobs whose unexpired lease `owner` holds."""
    now = dt.datetime.now(UTC)
    return set(
        conn.execute(
            sa.select(jobs.c.job_id).where(
                jobs.c.lease_owner == owner, jobs.c.lease_until > now, jobs.c.status.in_(ACTIVE)
            )
        ).scalars()
    )


def read_last_seq(conn: sa.Connection, job_id: str) -> int | None:
    return conn.execute(sa.select(jobs.c.last_seq).where(jobs.c.job_id == job_id)).scalar()


def read_finished_before(conn: sa.Connection, cutoff: dt.datetime, limit: int | None = None) -> list[str]:
    """Ids of terminal jobs finished (else last updated) before `cutoff`, oldest first."""
    finished = sa.func.coalesce(jobs.c.finished_at, jobs.c.updated_at)
    query = sa.select(jobs.c.job_id).where(jobs.c.status.in_(TERMINAL_STATUSES), finished < cutoff).order_by(finished)
    return list(conn.execute(query if limit is None else query.limit(limit)).scalars())


def read_attempts(conn: sa.Connection, job_id: str) -> list[AttemptRecord]:
    rows = conn.execute(sa.select(attempts).where(attempts.c.job_id == job_id).order_by(attempts.c.attempt))
    return [row_to_attempt(row) for row in rows]


def marker_committed(conn: sa.Connection, marker: tuple[str, int, bytes]) -> bool:
    """Whether the event a batch wrote first is in the database (so the whole batch is)."""
    job_id, seq, payload = marker
    stored = conn.execute(
        sa.select(job_events.c.payload).where(job_events.c.job_id == job_id, job_events.c.seq == seq)
    ).scalar()
    return stored is not None and bytes(stored) == payload
