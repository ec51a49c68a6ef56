"""Attempt records of a group commit folded into one statement each (PostgreSQL).

The dispatcher records the start of every attempt next to the job's DISPATCHED append and its
end after the outcome, so under a burst a batch holds as many attempt operations as appends.
One by one each costs round trips (an existence check and an upsert); here all the starts of a
batch become one ``INSERT … SELECT … FROM unnest(…) JOIN jobs … ON CONFLICT DO UPDATE`` and all
the ends one ``UPDATE … FROM unnest(…)``, with the same outcome per caller as one statement
each: NotFound for an unknown job or attempt, and a later operation on the same attempt wins.
Both are plans (``_pipeline``), pipelined with the rest of their batch when it is all folds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from workmesh.services.core.errors import NotFound
from workmesh.services.gateway.store.sql._ops import Batch, EndAttempt, StartAttempt
from workmesh.services.gateway.store.sql._pipeline import Plan, Query, drive, pg_sql

_START = pg_sql(
    sa.text(
        "INSERT INTO attempts (job_id, attempt, instance_id, started_at, ended_at, outcome, reason)"
        " SELECT a.job_id, a.attempt, a.instance_id, a.started_at, NULL, '', '' FROM unnest("
        "CAST(:job_id AS varchar[]), CAST(:attempt AS integer[]), CAST(:instance_id AS varchar[]),"
        " CAST(:started_at AS timestamptz[])) WITH ORDINALITY AS a(job_id, attempt, instance_id, started_at, ord)"
        " JOIN jobs j ON j.job_id = a.job_id ORDER BY a.ord"
        " ON CONFLICT (job_id, attempt) DO UPDATE SET instance_id = EXCLUDED.instance_id,"
        " started_at = EXCLUDED.started_at, ended_at = NULL, outcome = '', reason = ''"
        " RETURNING job_id, attempt"
    )
)
_END = pg_sql(
    sa.text(
        "UPDATE attempts t SET ended_at = u.ended_at, outcome = u.outcome, reason = u.reason FROM unnest("
        "CAST(:job_id AS varchar[]), CAST(:attempt AS integer[]), CAST(:ended_at AS timestamptz[]),"
        " CAST(:outcome AS varchar[]), CAST(:reason AS text[])) AS u(job_id, attempt, ended_at, outcome, reason)"
        " WHERE t.job_id = u.job_id AND t.attempt = u.attempt RETURNING t.job_id, t.attempt"
    )
)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _last_per_attempt(ops: list[Any]) -> dict[tuple[str, int], Any]:
    # One row per attempt in a statement (PostgreSQL refuses to touch a row twice): the last
    # operation wins, as it would one after the other.
    return {(op.job_id, op.attempt): op for op in ops}


def run_start_attempts(conn: sa.Connection, batch: Batch, ops: list[StartAttempt]) -> list[tuple[Any, bool]]:
    """Record the starts of `ops`; return (None or exception, failed) per operation."""
    return drive(conn, plan_start_attempts(batch, ops))


def plan_start_attempts(batch: Batch, ops: list[StartAttempt]) -> Plan:
    """The plan of :func:`run_start_attempts` (one statement)."""
    last = _last_per_attempt(ops)
    rows = list(last.values())
    done = {
        tuple(row)
        for row in (
            yield Query(
                _START,
                {
                    "job_id": [op.job_id for op in rows],
                    "attempt": [op.attempt for op in rows],
                    "instance_id": [op.instance_id for op in rows],
                    "started_at": [_utc(op.started_at or batch.now) for op in rows],
                },
            )
        )
    }
    return [
        (None, False) if (op.job_id, op.attempt) in done else (NotFound(f"job {op.job_id} not found"), True)
        for op in ops
    ]


def run_end_attempts(conn: sa.Connection, batch: Batch, ops: list[EndAttempt]) -> list[tuple[Any, bool]]:
    """Record how the attempts of `ops` ended; return (None or exception, failed) per operation."""
    return drive(conn, plan_end_attempts(batch, ops))


def plan_end_attempts(batch: Batch, ops: list[EndAttempt]) -> Plan:
    """The plan of :func:`run_end_attempts` (one statement)."""
    last = _last_per_attempt(ops)
    rows = list(last.values())
    done = {
        tuple(row)
        for row in (
            yield Query(
                _END,
                {
                    "job_id": [op.job_id for op in rows],
                    "attempt": [op.attempt for op in rows],
                    "ended_at": [_utc(op.ended_at or batch.now) for op in rows],
                    "outcome": [op.outcome for op in rows],
                    "reason": [op.reason for op in rows],
                },
            )
        )
    }
    return [
        (None, False)
        if (op.job_id, op.attempt) in done
        else (NotFound(f"attempt {op.attempt} of job {op.job_id} not found"), True)
        for op in ops
    ]
