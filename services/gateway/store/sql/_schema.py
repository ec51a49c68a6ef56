"""Tables of the SQL job store (SQLAlchemy Core) and the conversions between rows and records.

The alembic migrations in ``migrations/versions`` create exactly these tables; a test compares
the two. Proto-typed values are stored serialized: the params map inside a
``workmesh.v1.SubmitJobRequest`` (its ``params`` field is the same map type, so no extra message
is needed), progress/result/error as their own messages, each event as a ``JobEvent`` whose
``seq`` lives in its own column (the payload leaves it unset).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from workmesh.services.gateway.store import TERMINAL, AttemptRecord, JobRecord
from workmesh.services.gateway.store.sql._labels import OWNER_LABEL, LabelValue
from workmesh.v1 import common_pb2, gateway_pb2

UTC = dt.UTC
ACTIVE = (common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_DISPATCHED, common_pb2.JOB_STATUS_RUNNING)
TERMINAL_STATUSES = tuple(sorted(TERMINAL))


class UtcDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type and SQLAlchemy stores its datetimes as ISO-like text: storing
    every value as naive UTC keeps the text order equal to the time order, which the lease and
    retention queries compare on.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

# `pos` orders jobs by creation (list newest first, claim oldest first) and keeps the pages of
# ListJobs stable even when many jobs share a created_at. SQLite only auto-numbers INTEGER keys.
_Pos = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("pos", _Pos, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, unique=True),
    sa.Column("workflow_type", sa.String(200), nullable=False),
    sa.Column("params", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("timeout_s", sa.Float),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("instance_id", sa.String(300), nullable=False),
    sa.Column("progress", sa.LargeBinary),
    sa.Column("result", sa.LargeBinary),
    sa.Column("error", sa.LargeBinary),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("not_before", UtcDateTime),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("trace_parent", sa.String(512), nullable=False, server_default=""),
    sa.Column("worker_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("parent_id", sa.String(64)),
    sa.Column("step_name", sa.String(200)),
    sa.Index("ix_jobs_type_pos", "workflow_type", "pos"),
    sa.Index("ix_jobs_parent_id", "parent_id"),
    sa.Index("ix_jobs_status_pos", "status", "pos"),
    sa.Index("ix_jobs_lease_owner", "lease_owner"),
)
# One owner's jobs newest first (ListJobs of a caller's own jobs, the owner filter): _labels.py.
sa.Index("ix_jobs_owner_pos", LabelValue(jobs.c.labels, OWNER_LABEL), jobs.c.pos)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("time", UtcDateTime, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("instance_id", sa.String(300), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)


def sqlite_timestamp(value: dt.datetime | None) -> str | None:
    """A datetime as ``UtcDateTime`` stores it on SQLite: naive UTC, ISO text with microseconds
    (the text SQLAlchemy's SQLite DATETIME writes), for statements that bypass SQLAlchemy."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def set_timestamp(ts: Any, value: dt.datetime) -> None:
    """``ts.FromDatetime(value)`` (a naive datetime is UTC) without its ``timetuple()`` detour,
    which costs more than the rest of storing an event."""
    delta = value - (_EPOCH if value.tzinfo is not None else _NAIVE_EPOCH)
    ts.seconds = delta.days * 86400 + delta.seconds
    ts.nanos = delta.microseconds * 1000


def _blob(message: Any) -> bytes | None:
    return None if message is None else message.SerializeToString()


def _parse(cls: Any, data: bytes | None) -> Any:
    if data is None:
        return None
    message = cls()
    message.ParseFromString(data)
    return message


def params_blob(params: dict[str, common_pb2.ParamValue]) -> bytes:
    """The params map serialized inside a SubmitJobRequest (only its params field is set)."""
    holder = gateway_pb2.SubmitJobRequest()
    for name, value in params.items():
        holder.params[name].CopyFrom(value)
    return holder.SerializeToString()


def record_to_row(job: JobRecord) -> dict[str, Any]:
    """Column values of a new job (lease columns left empty)."""
    return {
        "job_id": job.job_id,
        "workflow_type": job.workflow_type,
        "params": params_blob(job.params),
        "status": job.status,
        "created_at": job.created_at,
        "updated_at": job.updated_at or job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "timeout_s": job.timeout_s,
        "max_attempts": job.max_attempts,
        "attempts": job.attempts,
        "instance_id": job.instance_id,
        "progress": _blob(job.progress),
        "result": _blob(job.result),
        "error": _blob(job.error),
        "last_seq": job.last_seq,
        "trace_id": job.trace_id,
        "labels": dict(job.labels),
        "idempotency_key": job.idempotency_key or None,
        "not_before": job.not_before,
        "trace_parent": job.trace_parent or "",
        "worker_seq": job.worker_seq,
        "parent_id": job.parent_id or None,
        "step_name": job.step_name or None,
        "lease_owner": job.lease_owner if job.lease_until is not None else None,
        "lease_until": job.lease_until if job.lease_owner else None,
    }


def row_to_record(row: Any) -> JobRecord:
    """A JobRecord from a row of ``jobs``."""
    holder = _parse(gateway_pb2.SubmitJobRequest, row.params)
    return JobRecord(
        job_id=row.job_id,
        workflow_type=row.workflow_type,
        params={name: _copy_value(value) for name, value in holder.params.items()},
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        timeout_s=row.timeout_s,
        max_attempts=row.max_attempts,
        attempts=row.attempts,
        instance_id=row.instance_id,
        progress=_parse(common_pb2.Progress, row.progress),
        result=_parse(common_pb2.JobResult, row.result),
        error=_parse(common_pb2.JobError, row.error),
        last_seq=row.last_seq,
        trace_id=row.trace_id,
        labels=dict(row.labels or {}),
        idempotency_key=row.idempotency_key,
        not_before=row.not_before,
        trace_parent=row.trace_parent,
        worker_seq=row.worker_seq,
        parent_id=row.parent_id or "",
        step_name=row.step_name or "",
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def _copy_value(value: common_pb2.ParamValue) -> common_pb2.ParamValue:
    # Map entries are owned by their container; a detached copy outlives the holder safely.
    copy = common_pb2.ParamValue()
    copy.CopyFrom(value)
    return copy


def event_from_payload(payload: bytes) -> common_pb2.JobEvent:
    """A stored event."""
    return _parse(common_pb2.JobEvent, payload)


def row_to_attempt(row: Any) -> AttemptRecord:
    """An AttemptRecord from a row of ``attempts``."""
    return AttemptRecord(
        job_id=row.job_id,
        attempt=row.attempt,
        instance_id=row.instance_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        reason=row.reason,
    )


def update_values(update: Any) -> dict[str, Any]:
    """Column values for the fields of a JobUpdate that are set."""
    values: dict[str, Any] = {}
    if update is None:
        return values
    for name in ("status", "started_at", "finished_at", "attempts", "instance_id", "not_before", "worker_seq"):
        value = getattr(update, name)
        if value is not None:
            values[name] = value
    for name in ("progress", "result", "error"):
        value = getattr(update, name)
        if value is not None:
            values[name] = value.SerializeToString()
    if values.get("status") in TERMINAL:
        # A finished job needs no driver any more: its lease goes with the terminal transition.
        values["lease_owner"] = None
        values["lease_until"] = None
    return values
