"""Creates and appends of a group commit folded into one statement each (PostgreSQL).

Over a network every statement costs a round trip. On PostgreSQL consecutive creates of a
batch become one multi-row ``INSERT … ON CONFLICT DO NOTHING`` (duplicates inside the batch
are sorted out first, in order, so the first of two creates with one idempotency key wins as
it would one after the other), and consecutive appends of a batch are folded per job (event
counts added up, later JobUpdate fields winning, exactly as if applied one after the other)
and applied, together with the insert of their events, by a single statement:
``UPDATE … FROM unnest(…)`` numbering the jobs' events in the same go.
``COALESCE(new, old)`` is JobUpdate's "None leaves a field as it is". The outcome for every
caller is the same as with one statement per append: appends after a terminal update of the
same job fail with FailedPrecondition, appends to unknown jobs with NotFound, and nothing of
theirs is written. SQLite, in process, keeps one cheap statement per append (``Append.run``).

Each fold is a plan (``_pipeline``): it yields its statements and is sent their rows, so that a
batch of folds can be pipelined (``plan_appends``, ``plan_creates``); ``run_appends`` and
``run_creates`` run one in a transaction of their own making.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.gateway.store import TERMINAL
from workmesh.services.gateway.store.sql._ops import Append, Batch, Create, payload_of
from workmesh.services.gateway.store.sql._pipeline import Plan, Query, drive, pg_sql
from workmesh.services.gateway.store.sql._schema import TERMINAL_STATUSES, jobs, record_to_row, row_to_record
from workmesh.v1 import common_pb2

UTC = dt.UTC
_SCALARS = ("status", "started_at", "finished_at", "attempts", "instance_id", "not_before", "worker_seq")
_MESSAGES = ("progress", "result", "error")
_TYPES = {
    "status": "smallint",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "attempts": "integer",
    "instance_id": "varchar",
    "not_before": "timestamptz",
    "worker_seq": "bigint",
    "progress": "bytea",
    "result": "bytea",
    "error": "bytea",
}
_COLUMNS = (*_SCALARS, *_MESSAGES)
_FIRST_TERMINAL = min(TERMINAL_STATUSES)  # statuses at or above it are terminal (4..7)

_UPDATE = pg_sql(
    sa.text(
        "WITH u AS (UPDATE jobs AS j SET last_seq = j.last_seq + v.n, updated_at = :now, "
        + ", ".join(f"{c} = COALESCE(v.{c}, j.{c})" for c in _COLUMNS)
        + f", lease_owner = CASE WHEN v.status >= {_FIRST_TERMINAL} THEN NULL ELSE j.lease_owner END"
        + f", lease_until = CASE WHEN v.status >= {_FIRST_TERMINAL} THEN NULL ELSE j.lease_until END"
        + " FROM unnest(CAST(:job_id AS varchar[]), CAST(:n AS bigint[]), "
        + ", ".join(f"CAST(:{c} AS {_TYPES[c]}[])" for c in _COLUMNS)
        + f") AS v(job_id, n, {', '.join(_COLUMNS)})"
        + f" WHERE j.job_id = v.job_id AND j.status < {_FIRST_TERMINAL}"
        + " RETURNING j.job_id, j.last_seq, v.n), "
        # The events of the jobs updated above, numbered after the job's previous last_seq; the
        # events of jobs the UPDATE refused (unknown or finished) find no partner and are dropped.
        + "e AS (INSERT INTO job_events (job_id, seq, kind, time, payload)"
        + " SELECT x.job_id, u.last_seq - u.n + x.ord, x.kind, x.time, x.payload"
        + " FROM unnest(CAST(:ev_job_id AS varchar[]), CAST(:ev_ord AS bigint[]), CAST(:ev_kind AS varchar[]),"
        + " CAST(:ev_time AS timestamptz[]), CAST(:ev_payload AS bytea[])) AS x(job_id, ord, kind, time, payload)"
        + " JOIN u ON u.job_id = x.job_id)"
        + " SELECT job_id, last_seq FROM u"
    )
)
_STATUSES = pg_sql(sa.select(jobs.c.job_id, jobs.c.status).where(jobs.c.job_id == sa.any_(sa.bindparam("ids"))))
_BY_KEYS = pg_sql(sa.select(jobs).where(jobs.c.idempotency_key == sa.any_(sa.bindparam("keys"))))


class _Folded:
    __slots__ = ("indexes", "count", "fields", "terminal")

    def __init__(self) -> None:
        self.indexes: list[int] = []
        self.count = 0
        self.fields: dict[str, Any] = {}
        self.terminal = False


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return value


def run_appends(conn: sa.Connection, batch: Batch, appends: list[Append]) -> list[tuple[Any, bool]]:
    """Apply `appends` in order; return (result or exception, failed) per append."""
    return drive(conn, plan_appends(batch, appends))


def plan_appends(batch: Batch, appends: list[Append]) -> Plan:
    """The plan of :func:`run_appends`: one statement, and a look at the jobs it did not update."""
    outcomes: list[tuple[Any, bool]] = [(None, False)] * len(appends)
    folded: dict[str, _Folded] = {}
    for index, op in enumerate(appends):
        fold = folded.setdefault(op.job_id, _Folded())
        if fold.terminal:
            outcomes[index] = (FailedPrecondition(f"job {op.job_id} is already finished"), True)
            continue
        fold.indexes.append(index)
        fold.count += len(op.events)
        if op.update is not None:
            for name in _COLUMNS:
                value = getattr(op.update, name)
                if value is not None:
                    fold.fields[name] = value.SerializeToString() if name in _MESSAGES else _utc(value)
            fold.terminal = fold.fields.get("status") in TERMINAL

    # The same row order in every replica makes deadlocks between batches rare (they are retried).
    ids = sorted(folded)
    params: dict[str, Any] = {"now": batch.now, "job_id": ids, "n": [folded[j].count for j in ids]}
    for name in _COLUMNS:
        params[name] = [folded[j].fields.get(name) for j in ids]
    events: dict[str, list[str | int | bytes | dt.datetime]] = {
        "ev_job_id": [],
        "ev_ord": [],
        "ev_kind": [],
        "ev_time": [],
        "ev_payload": [],
    }
    for job_id, fold in folded.items():
        ordinal = 0
        for index in fold.indexes:
            for event in appends[index].events:
                ordinal += 1
                if not event.HasField("time"):
                    event.time.FromDatetime(batch.now)
                event.seq = 0
                events["ev_job_id"].append(job_id)
                events["ev_ord"].append(ordinal)
                events["ev_kind"].append(event.WhichOneof("payload") or "")
                events["ev_time"].append(event.time.ToDatetime(UTC))
                events["ev_payload"].append(payload_of(event))
    params.update(events)
    last_seqs: dict[str, int] = dict((yield Query(_UPDATE, params)))

    missing = [job_id for job_id in ids if job_id not in last_seqs]
    statuses = dict((yield Query(_STATUSES, {"ids": missing}))) if missing else {}
    for job_id, fold in folded.items():
        last_seq = last_seqs.get(job_id)
        if last_seq is None:
            status = statuses.get(job_id)
            error: Exception = (
                NotFound(f"job {job_id} not found")
                if status is None
                else FailedPrecondition(
                    f"job {job_id} is already finished (status {common_pb2.JobStatus.Name(status)})"
                )
            )
            for index in fold.indexes:
                outcomes[index] = (error, True)
            continue
        seq = last_seq - fold.count
        for index in fold.indexes:
            events_of_op = appends[index].events
            for event in events_of_op:
                seq += 1
                event.seq = seq
            outcomes[index] = (list(events_of_op), False)
            if events_of_op:
                first = events_of_op[0]
                batch.note_written(job_id, first.seq, payload_of(first))
        batch.touched[job_id] = last_seq
    return outcomes


_JOB_COLUMNS = {
    "job_id": "varchar",
    "workflow_type": "varchar",
    "params": "bytea",
    "status": "smallint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "timeout_s": "float8",
    "max_attempts": "integer",
    "attempts": "integer",
    "instance_id": "varchar",
    "progress": "bytea",
    "result": "bytea",
    "error": "bytea",
    "last_seq": "bigint",
    "trace_id": "varchar",
    "labels": "json",
    "idempotency_key": "varchar",
    "not_before": "timestamptz",
    "trace_parent": "varchar",
    "worker_seq": "bigint",
    "parent_id": "varchar",
    "step_name": "varchar",
    "lease_owner": "varchar",
    "lease_until": "timestamptz",
}
# Arrays rather than a VALUES list: the statement text stays the same whatever the number of
# rows, so psycopg parses it once and PostgreSQL prepares it once. Rows go in array order.
_INSERT_JOBS = pg_sql(
    sa.text(
        f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) SELECT {', '.join(_JOB_COLUMNS)} FROM unnest("
        + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _JOB_COLUMNS.items())
        + f") WITH ORDINALITY AS r({', '.join(_JOB_COLUMNS)}, ord) ORDER BY ord"
        + " ON CONFLICT DO NOTHING RETURNING job_id"
    )
)


def run_creates(conn: sa.Connection, batch: Batch, creates: list[Create]) -> list[tuple[Any, bool]]:
    """Apply `creates` in order; return ((record, created) or exception, failed) per create."""
    return drive(conn, plan_creates(batch, creates))


def plan_creates(batch: Batch, creates: list[Create]) -> Plan:
    """The plan of :func:`run_creates`: one statement, and a look at the earlier jobs of keys
    that were taken."""
    records = [op.prepared() for op in creates]
    included: dict[str, int] = {}  # job id -> index of the one record with that id in the INSERT
    keys: set[str] = set()
    rows = []
    for index, record in enumerate(records):
        # Only the first of equal ids/keys goes to the INSERT; the rest resolve like conflicts.
        if record.job_id in included or (record.idempotency_key and record.idempotency_key in keys):
            continue
        included[record.job_id] = index
        if record.idempotency_key:
            keys.add(record.idempotency_key)
        rows.append(record_to_row(record))
    inserted: set[str] = set()
    if rows:
        params = {c: [_utc(row[c]) for row in rows] for c in _JOB_COLUMNS}
        params["labels"] = [json.dumps(labels) for labels in params["labels"]]
        inserted = {row[0] for row in (yield Query(_INSERT_JOBS, params))}
    created = {index for job_id, index in included.items() if job_id in inserted}
    # The events of the created jobs are known now (they go out with COMMIT when pipelined).
    stored = {index: Create.stored(records[index], batch) for index in sorted(created)}
    wanted = sorted({r.idempotency_key for i, r in enumerate(records) if i not in created and r.idempotency_key})
    earlier = (
        {row.idempotency_key: row_to_record(row) for row in (yield Query(_BY_KEYS, {"keys": wanted}, named=True))}
        if wanted
        else {}
    )
    outcomes: list[tuple[Any, bool]] = []
    for index, record in enumerate(records):
        if index in created:
            outcomes.append((stored[index], False))
        elif record.idempotency_key in earlier:
            outcomes.append(((earlier[record.idempotency_key], False), False))
        else:
            outcomes.append((FailedPrecondition(f"job {record.job_id} exists already"), True))
    return outcomes
