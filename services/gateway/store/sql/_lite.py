"""The hot write operations on SQLite as plain sqlite3 statements (no SQLAlchemy per statement).

A no-op job costs the store about six writes (create, DISPATCHED, attempt start, RUNNING,
result + terminal, attempt end). Through SQLAlchemy Core each statement pays for its cache-key
generation, parameter processing and result wrapping — most of the writer's time in the
profiles, far more than SQLite itself. Here the same statements go straight to the sqlite3
cursor of the transaction's connection (the module keeps them prepared), with the values in
exactly the form SQLAlchemy stores them (``UtcDateTime`` as naive UTC ISO text, JSON as text),
so everything else keeps reading the rows through SQLAlchemy. The outcomes are those of the
operations' own ``run`` (``_sql_ops``), which the contract tests hold both to.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from workmesh.services.core.errors import NotFound
from workmesh.services.gateway.store.sql._ops import (
    Append,
    Batch,
    Create,
    EndAttempt,
    StartAttempt,
    missing_or_finished,
)
from workmesh.services.gateway.store.sql._schema import (
    ACTIVE,
    jobs,
    record_to_row,
    sqlite_timestamp,
    update_values,
)

_DATETIMES = frozenset({"created_at", "updated_at", "started_at", "finished_at", "not_before", "lease_until"})
_JOB_COLUMNS = tuple(c.name for c in jobs.c if c.name != "pos")
_JOB_DATETIMES = tuple(i for i, c in enumerate(_JOB_COLUMNS) if c in _DATETIMES)
_JOB_LABELS = _JOB_COLUMNS.index("labels")
_INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({', '.join('?' * len(_JOB_COLUMNS))})"
    " ON CONFLICT DO NOTHING RETURNING pos"
)
_APPEND_WHERE = f" WHERE job_id = ? AND status BETWEEN {ACTIVE[0]} AND {ACTIVE[-1]} RETURNING last_seq"
_START = (
    "INSERT INTO attempts (job_id, attempt, instance_id, started_at, ended_at, outcome, reason)"
    " SELECT ?, ?, ?, ?, NULL, '', '' WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?)"
    " ON CONFLICT (job_id, attempt) DO UPDATE SET instance_id = excluded.instance_id,"
    " started_at = excluded.started_at, ended_at = NULL, outcome = '', reason = ''"
)
_END = "UPDATE attempts SET ended_at = ?, outcome = ?, reason = ? WHERE job_id = ? AND attempt = ?"
_append_sql: dict[tuple[str, ...], str] = {}


def _bind(name: str, value: Any) -> Any:
    if name in _DATETIMES:
        return sqlite_timestamp(value)
    if name == "labels":
        return json.dumps(value)
    return value


def sqlite_connection(conn: sa.Connection) -> sqlite3.Connection:
    """The sqlite3 connection inside a SQLAlchemy connection."""
    return conn.connection.driver_connection  # type: ignore[return-value]


def create(cur: sqlite3.Cursor, conn: sa.Connection, batch: Batch, op: Create) -> tuple[Any, bool]:
    record = op.prepared()
    row = record_to_row(record)
    values = [row[c] for c in _JOB_COLUMNS]  # bound as _bind would, column by column
    for i in _JOB_DATETIMES:
        values[i] = sqlite_timestamp(values[i])
    values[_JOB_LABELS] = json.dumps(values[_JOB_LABELS])
    if cur.execute(_INSERT_JOB, values).fetchone() is None:
        return Create.conflict(conn, record)
    return Create.stored(record, batch)


def append(cur: sqlite3.Cursor, conn: sa.Connection, batch: Batch, op: Append) -> list[Any]:
    values = update_values(op.update)
    columns = tuple(values)
    sql = _append_sql.get(columns)
    if sql is None:
        sql = _append_sql[columns] = (
            "UPDATE jobs SET last_seq = last_seq + ?, updated_at = ?"
            + "".join(f", {c} = ?" for c in columns)
            + _APPEND_WHERE
        )
    count = len(op.events)
    row = cur.execute(sql, [count, batch.now_text, *[_bind(c, values[c]) for c in columns], op.job_id]).fetchone()
    if row is None:
        raise missing_or_finished(conn, op.job_id)
    last_seq = row[0]
    seq = last_seq - count
    for event in op.events:
        seq += 1
        event.seq = seq
        batch.add_event(op.job_id, event, batch.stamp(event))
    batch.touched[op.job_id] = last_seq
    return list(op.events)


def start_attempt(cur: sqlite3.Cursor, conn: sa.Connection, batch: Batch, op: StartAttempt) -> None:
    started = sqlite_timestamp(op.started_at) if op.started_at is not None else batch.now_text
    if not cur.execute(_START, (op.job_id, op.attempt, op.instance_id, started, op.job_id)).rowcount:
        raise NotFound(f"job {op.job_id} not found")


def end_attempt(cur: sqlite3.Cursor, conn: sa.Connection, batch: Batch, op: EndAttempt) -> None:
    ended = sqlite_timestamp(op.ended_at) if op.ended_at is not None else batch.now_text
    if not cur.execute(_END, (ended, op.outcome, op.reason, op.job_id, op.attempt)).rowcount:
        raise NotFound(f"attempt {op.attempt} of job {op.job_id} not found")


# The fast path of each operation type on the raw sqlite3 cursor (what it returns is its outcome).
FAST: dict[type, Callable[[sqlite3.Cursor, sa.Connection, Batch, Any], Any]] = {
    Create: create,
    Append: append,
    StartAttempt: start_attempt,
    EndAttempt: end_attempt,
}
