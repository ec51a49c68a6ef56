"""PostgreSQL statements as plans, and a group commit in two round trips (psycopg pipeline mode).

A fold (``_fold``, ``_fold_attempts``) is written as a *plan*: a generator that yields the
:class:`Query` it needs run, is sent that query's rows, and returns its outcomes. The plan
holds no connection, so the same plan runs either one query at a time (:func:`drive`, inside
a transaction that also runs other operations through SQLAlchemy) or — when a whole batch is
folds, the usual case under load — pipelined with the other plans of the batch
(:func:`commit_pipelined`):

1. ``BEGIN`` and the first query of every plan go out together, and their results come back
   together (one flush request: one round trip);
2. a plan that needs a second look (an append to a job that is missing or finished, a create
   whose idempotency key belongs to an earlier job) gets it in one more round trip — never in
   a batch that is all well-formed;
3. the batch's collected event and audit rows, ``COMMIT`` and a Sync go out together (one round
   trip, in which the server also syncs its WAL).

psycopg itself would send ``BEGIN`` and wait for it (it syncs after its own ``BEGIN`` in
pipeline mode), so the connection runs in autocommit mode for the pipeline and the transaction
is ours: ``BEGIN`` and ``COMMIT`` are plain statements in the pipeline. SQLAlchemy's results of
``RETURNING`` statements do not work in pipeline mode, hence the raw psycopg connection here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Generator, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from psycopg.rows import namedtuple_row, tuple_row
from psycopg.types.array import ListBinaryDumper
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.psycopg.dialect()
UTC = dt.UTC
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_ARRAY_CAST = re.compile(r"CAST\(%\((\w+)\)s AS (\w+)\[\]\)")


def _typed_array(element: str) -> type[list]:
    """A list type whose psycopg dumper writes a binary array of `element` without looking at
    the items first (psycopg's own list dumper scans every list twice to find its type)."""
    oid = psycopg.adapters.types[element].oid
    array_oid = psycopg.adapters.types[element].array_oid
    cls = type(f"{element.capitalize()}Array", (list,), {})
    dumper = type(f"{cls.__name__}Dumper", (ListBinaryDumper,), {"oid": array_oid, "element_oid": oid})
    psycopg.adapters.register_dumper(cls, dumper)
    return cls


# The element types the statements' CASTs name, and the one each is sent as (the CAST turns it
# into the column's type: integers go as int8, strings and JSON text as text).
_SENT_AS = {
    "varchar": "text",
    "text": "text",
    "json": "text",
    "bigint": "int8",
    "integer": "int8",
    "smallint": "int8",
    "float8": "float8",
    "bytea": "bytea",
    "timestamptz": "timestamptz",
}
_ARRAYS = {name: _typed_array(name) for name in set(_SENT_AS.values())}
# Plan statement text -> (the same with its parameters sent in binary, the array type of each
# parameter a CAST names).
_prepared: dict[str, tuple[str, dict[str, type[list]]]] = {}


@dataclasses.dataclass(frozen=True)
class Query:
    """One statement of a plan in psycopg's ``%(name)s`` form, with its parameters.

    Attributes:
        named: rows as named tuples (attribute access, e.g. for ``row_to_record``), with their
            datetimes in UTC as ``UtcDateTime`` gives them; plain tuples otherwise.
    """

    sql: str
    params: dict[str, Any]
    named: bool = False


# A plan yields queries, is sent each one's rows, and returns one (outcome, failed) per operation.
Plan = Generator[Query, list[Any], list[tuple[Any, bool]]]


def pg_sql(statement: Any) -> str:
    """A SQLAlchemy ``text()`` (or Core statement) as psycopg SQL text."""
    return str(statement.compile(dialect=_DIALECT))


def driver_connection(conn: sa.Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy connection."""
    return conn.connection.driver_connection  # type: ignore[return-value]


def _utc_row(row: Any) -> Any:
    changed = {
        name: value.astimezone(UTC)
        for name, value in zip(row._fields, row, strict=True)
        if isinstance(value, dt.datetime)
    }
    return row._replace(**changed) if changed else row


def binary_params(query: Query) -> tuple[str, dict[str, Any]]:
    """`query` with its parameters sent in binary format (``%(name)b``), each list that a
    ``CAST(%(name)s AS type[])`` reads as an array of that type.

    The plans bind whole columns as arrays. In text format psycopg writes an array element by
    element and runs a regular expression over each to quote it (a bytea payload's hex escapes
    are backslashes: every event is quoted and escaped), and it scans each list twice for the
    type of its items: most of the writer thread's CPU in the burst profiles. Sent binary with
    the type the statement names, an element is its bytes with a length.
    """
    prepared = _prepared.get(query.sql)
    if prepared is None:
        arrays = {name: _ARRAYS[_SENT_AS[t]] for name, t in _ARRAY_CAST.findall(query.sql) if t in _SENT_AS}
        prepared = _prepared[query.sql] = (_PLACEHOLDER.sub(r"%(\1)b", query.sql), arrays)
    sql, arrays = prepared
    params = {
        name: arrays[name](value) if type(value) is list and name in arrays else value
        for name, value in query.params.items()
    }
    return sql, params


def _execute(raw: psycopg.Connection, query: Query) -> psycopg.Cursor:
    cursor = raw.cursor(row_factory=namedtuple_row if query.named else tuple_row)
    cursor.execute(*binary_params(query))
    return cursor


def _rows(cursor: psycopg.Cursor, query: Query) -> list[Any]:
    rows = cursor.fetchall()  # every plan query returns rows (RETURNING or SELECT)
    return [_utc_row(row) for row in rows] if query.named else rows


def drive(conn: sa.Connection, plan: Plan) -> list[tuple[Any, bool]]:
    """Run `plan` one query at a time in the connection's current transaction."""
    raw = driver_connection(conn)
    try:
        query = next(plan)
        while True:
            query = plan.send(_rows(_execute(raw, query), query))
    except StopIteration as done:
        return done.value


def commit_pipelined(
    conn: sa.Connection,
    plans: Sequence[Plan],
    *,
    before_commit: Callable[[list[list[tuple[Any, bool]]]], Sequence[Query]],
    on_commit_error: Callable[[BaseException], BaseException],
) -> list[list[tuple[Any, bool]]]:
    """Run `plans` in one transaction of two round trips (three when a plan needs a second look).

    Args:
        conn: the writer's connection (idle: no transaction open).
        plans: the batch's plans, in the order their statements must run.
        before_commit: called with every plan's outcomes once all are done (before COMMIT: a
            commit whose outcome is lost with the connection may turn out to have happened);
            the queries it returns (the batch's event and audit rows) go out with ``COMMIT``.
        on_commit_error: maps an error of the last round trip (``COMMIT`` included) to the one
            raised, e.g. "outcome unknown" for a lost connection.

    Returns:
        Each plan's outcomes.

    Raises:
        psycopg.Error: a statement failed (nothing is committed) or the connection broke.
    """
    raw = driver_connection(conn)
    outcomes: list[list[tuple[Any, bool]] | None] = [None] * len(plans)
    if raw.broken or raw.closed:  # e.g. it died just after the last COMMIT: a transient error
        raise psycopg.OperationalError("the connection to the database was lost")
    _rollback(raw)  # nothing is open here, unless a failure left it so
    raw.autocommit = True  # BEGIN and COMMIT are statements of the pipeline (see the module doc)
    committing = False
    try:
        with raw.pipeline():
            raw.execute("BEGIN")
            pending: list[tuple[int, Query]] = []
            for index, plan in enumerate(plans):
                _advance(plan, index, None, pending, outcomes)
            while pending:
                sent = [(index, query, _execute(raw, query)) for index, query in pending]
                pending = []
                for index, query, cursor in sent:  # the first fetch flushes: one round trip for all
                    _advance(plans[index], index, _rows(cursor, query), pending, outcomes)
            committing = True
            for query in before_commit(outcomes):  # type: ignore[arg-type]
                _execute(raw, query)
            raw.execute("COMMIT")
            # Leaving pipeline mode sends the Sync and waits for everything up to it.
    except Exception as exc:
        _rollback(raw)
        mapped = on_commit_error(exc) if committing else exc
        if mapped is exc:
            raise
        raise mapped from exc
    except BaseException:
        _rollback(raw)
        raise
    finally:
        with contextlib.suppress(Exception):
            raw.autocommit = False
    return outcomes  # type: ignore[return-value]


def _advance(
    plan: Plan,
    index: int,
    rows: list[Any] | None,
    pending: list[tuple[int, Query]],
    outcomes: list[list[tuple[Any, bool]] | None],
) -> None:
    try:
        query = next(plan) if rows is None else plan.send(rows)
    except StopIteration as done:
        outcomes[index] = done.value
        return
    pending.append((index, query))


def _rollback(raw: psycopg.Connection) -> None:
    """End a transaction left open (or failed) by a pipeline that raised; quiet if the
    connection is gone (the writer drops it)."""
    if raw.closed or raw.broken:
        return
    with contextlib.suppress(Exception):
        if raw.info.transaction_status != pq.TransactionStatus.IDLE:
            raw.execute("ROLLBACK")
