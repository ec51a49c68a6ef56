"""Group commit: one writer thread turns the write operations waiting at a time into one transaction.

Callers on the event loop hand an operation to :meth:`GroupWriter.submit` and await its future.
The thread takes everything that queued up while the previous transaction ran and commits it
in one go, so under load many appends share one commit (and one fsync), while a lone caller is
served at once — nothing waits for a timer.

A transient database error (connection lost, database restarting, deadlock) retries the whole
batch on a new connection until ``retry_for`` seconds have passed; then the callers get
Unavailable. If the connection died during COMMIT, the outcome is unknown: the batch's first
event is looked up on the new connection, and found means committed, so an append is never
stored twice nor reported as failed when it was written. Any other database error re-runs the
batch one operation per transaction, so only the operation at fault fails.

:class:`Committer` is that transaction logic; :class:`GroupWriter` feeds it from its thread, and
``_loop.LoopWriter`` from the event loop (the gateway's own SQLite file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa
from psycopg import pq

from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.store.sql import _lite as lite
from workmesh.services.gateway.store.sql._engine import WRITER_OPTION, close_quietly, is_transient, store_error
from workmesh.services.gateway.store.sql._fold import plan_appends, plan_creates, run_appends, run_creates
from workmesh.services.gateway.store.sql._fold_attempts import (
    plan_end_attempts,
    plan_start_attempts,
    run_end_attempts,
    run_start_attempts,
)
from workmesh.services.gateway.store.sql._ops import Append, Batch, Create, EndAttempt, StartAttempt, marker_committed
from workmesh.services.gateway.store.sql._pipeline import Plan, commit_pipelined, driver_connection

log = logging.getLogger(__name__)
_STOP = object()
# Each folds a run of one operation type: (result or exception, failed) per operation.
_FOLDS: dict[type, Callable[[sa.Connection, Batch, list[Any]], list[tuple[Any, bool]]]] = {
    Append: run_appends,
    Create: run_creates,
    StartAttempt: run_start_attempts,
    EndAttempt: run_end_attempts,
}
# The same folds as plans, for a batch made of nothing else (pipelined: two round trips).
_PLANS: dict[type, Callable[[Batch, list[Any]], Plan]] = {
    Append: plan_appends,
    Create: plan_creates,
    StartAttempt: plan_start_attempts,
    EndAttempt: plan_end_attempts,
}


class Operation(Protocol):
    def run(self, conn: sa.Connection, batch: Batch) -> Any: ...


class Request:
    """One operation waiting for its transaction, and then its outcome."""

    __slots__ = ("op", "future", "outcome", "failed")

    def __init__(self, op: Operation, future: asyncio.Future) -> None:
        self.op = op
        self.future = future
        self.outcome: Any = None
        self.failed = False


class _CommitUnknown(Exception):
    """The connection broke during COMMIT."""


class Committer:
    """Turns a batch of write operations into one transaction; how batches form is the subclass's.

    Args:
        engine: where to write.
        loop: the event loop of the callers (futures are resolved on it).
        on_commit: called on the loop after each commit with the batch's ``touched`` map.
        notify: run inside each transaction before COMMIT with the ``touched`` map (the
            PostgreSQL store sends its NOTIFY there, so it is delivered exactly when the data is
            visible).
        max_batch: operations per transaction at most.
        retry_for: seconds to keep retrying transient errors before failing with Unavailable.
        on_thread_commit: called with the requests (``op``, ``outcome``, ``failed``) of each
            committed transaction, before any caller or waiter hears of it (the store's event
            cache is filled there, so a woken watcher always finds the events).
    """

    def __init__(
        self,
        engine: sa.Engine,
        loop: asyncio.AbstractEventLoop,
        *,
        on_commit: Callable[[dict[str, int]], None],
        notify: Callable[[sa.Connection, dict[str, int]], None] | None = None,
        max_batch: int = 256,
        retry_for: float = 60.0,
        on_thread_commit: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self._on_thread_commit = on_thread_commit
        self._engine = engine
        self._loop = loop
        self._on_commit = on_commit
        self._notify = notify
        self._max_batch = max_batch
        self._retry_for = retry_for
        self._conn: sa.Connection | None = None
        self.commits = 0  # transactions committed (the benchmark reports operations per commit)

    def _process_or_fail(self, requests: list[Request]) -> None:
        """Commit `requests`; a bug on the way fails them all instead of leaving them hanging."""
        try:
            self._process(requests)
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave callers hanging
            log.exception("job store writer failed")
            for request in requests:
                request.outcome, request.failed = exc, True
            self._deliver(requests, {})

    def _process(self, requests: list[Request]) -> None:
        try:
            touched = self._commit_with_retry(requests)
        except Exception as exc:  # noqa: BLE001 - every caller must hear about it
            exc = store_error(exc)
            if not isinstance(exc, WorkmeshError) and len(requests) > 1:
                touched = self._one_by_one(requests)
                self._committed(requests)
                self._deliver(requests, touched)
                return
            for request in requests:
                request.outcome, request.failed = exc, True
            touched = {}
        self._committed(requests)
        self._deliver(requests, touched)

    def _committed(self, requests: list[Request]) -> None:
        if self._on_thread_commit is not None:
            try:
                self._on_thread_commit(requests)
            except Exception:  # noqa: BLE001 - a cache must never cost an answer
                log.exception("job store commit hook failed")

    def _one_by_one(self, requests: list[Request]) -> dict[str, int]:
        touched: dict[str, int] = {}
        for request in requests:
            try:
                touched.update(self._commit_with_retry([request]))
            except Exception as exc:  # noqa: BLE001 - this caller's own failure
                exc = store_error(exc)
                if not isinstance(exc, WorkmeshError):
                    log.exception("job store operation failed: %r", request.op)
                request.outcome, request.failed = exc, True
        return touched

    def _commit_with_retry(self, requests: list[Request]) -> dict[str, int]:
        deadline = time.monotonic() + self._retry_for
        delay = 0.02
        unknown_marker: tuple[str, int, bytes] | None = None
        while True:
            try:
                conn = self._connection()
                if unknown_marker is not None and marker_committed(conn, unknown_marker):
                    conn.rollback()
                    return self._last_touched  # the earlier try did commit: its results stand
                unknown_marker = None
                return self._commit_once(conn, requests)
            except _CommitUnknown as exc:
                unknown_marker = exc.args[0]
                error: Exception = exc.__cause__  # type: ignore[assignment]
            except Exception as exc:
                if not is_transient(exc):
                    self._drop_connection()
                    raise
                error = exc
            self._reset_connection()
            if time.monotonic() + delay > deadline:
                raise error
            log.warning("job store: %s: %s; retrying", error.__class__.__name__, error)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _commit_once(self, conn: sa.Connection, requests: list[Request]) -> dict[str, int]:
        if conn.dialect.name == "postgresql" and all(type(r.op) in _PLANS for r in requests):
            return self._commit_pipelined(conn, requests)
        # SQLite: the hot operations run as plain sqlite3 statements in the same transaction.
        # The transaction is begun and committed on the sqlite3 connection itself (what
        # SQLAlchemy would do, minus its per-transaction cost); an operation run through
        # SQLAlchemy joins it (the begin hook in _sql_engine sees it open).
        raw = cursor = None
        if conn.dialect.name == "sqlite":
            raw = lite.sqlite_connection(conn)
            if not raw.in_transaction:
                raw.execute("BEGIN IMMEDIATE")
            cursor = raw.cursor()
        batch = Batch(conn.dialect.name, cursor)
        # PostgreSQL: runs of consecutive creates or appends become one statement each.
        fold = batch.dialect == "postgresql"
        run: list[Request] = []
        # Attempt records touch only their own table: on PostgreSQL they go last, folded, so
        # that the appends they come interleaved with (DISPATCHED + start) still fold too.
        starts: list[Request] = []
        ends: list[Request] = []
        for request in requests:
            if fold and isinstance(request.op, StartAttempt):
                starts.append(request)
                continue
            if fold and isinstance(request.op, EndAttempt):
                ends.append(request)
                continue
            if fold and run and type(request.op) is not type(run[0].op):
                self._run_folded(conn, batch, run)
                run = []
            if fold and isinstance(request.op, (Append, Create)):
                run.append(request)
                continue
            fast = lite.FAST.get(type(request.op)) if cursor is not None else None
            try:
                if fast is not None and cursor is not None:
                    request.outcome, request.failed = fast(cursor, conn, batch, request.op), False
                else:
                    request.outcome, request.failed = request.op.run(conn, batch), False
            except WorkmeshError as exc:  # the operation's own verdict; it wrote nothing
                request.outcome, request.failed = exc, True
        for folded in (run, starts, ends):
            if folded:
                self._run_folded(conn, batch, folded)
        batch.flush_events(conn)
        if self._notify is not None and batch.touched:
            self._notify(conn, batch.touched)
        self._last_touched = batch.touched
        try:
            if conn.in_transaction():
                conn.commit()
            elif fold and driver_connection(conn).info.transaction_status != pq.TransactionStatus.IDLE:
                driver_connection(conn).commit()  # only folds ran, on psycopg itself (_pipeline.drive)
            if raw is not None and raw.in_transaction:
                raw.commit()
        except Exception as exc:
            if batch.marker is not None and is_transient(exc):
                raise _CommitUnknown(batch.marker) from exc
            raise
        self.commits += 1
        return batch.touched

    def _commit_pipelined(self, conn: sa.Connection, requests: list[Request]) -> dict[str, int]:
        """PostgreSQL, a batch of folds only: one transaction in two round trips (``_pipeline``)."""
        batch = Batch("postgresql")
        runs: list[list[Request]] = []
        starts: list[Request] = []
        ends: list[Request] = []
        for request in requests:  # the order of _commit_once: runs of one type, attempts last
            if isinstance(request.op, StartAttempt):
                starts.append(request)
            elif isinstance(request.op, EndAttempt):
                ends.append(request)
            elif runs and type(runs[-1][0].op) is type(request.op):
                runs[-1].append(request)
            else:
                runs.append([request])
        runs += [run for run in (starts, ends) if run]

        def before_commit(outcomes: list[list[tuple[Any, bool]]]) -> list:
            for run, run_outcomes in zip(runs, outcomes, strict=True):
                for request, (outcome, failed) in zip(run, run_outcomes, strict=False):
                    request.outcome, request.failed = outcome, failed
            self._last_touched = batch.touched  # what a commit found done after all returns
            if self._notify is not None and batch.touched:  # folds delete nothing: no statement here
                self._notify(conn, batch.touched)
            return batch.pg_queries()

        def on_commit_error(exc: BaseException) -> BaseException:
            return _CommitUnknown(batch.marker) if batch.marker is not None and is_transient(exc) else exc

        plans = [_PLANS[type(run[0].op)](batch, [request.op for request in run]) for run in runs]
        commit_pipelined(conn, plans, before_commit=before_commit, on_commit_error=on_commit_error)
        self.commits += 1
        return batch.touched

    @staticmethod
    def _run_folded(conn: sa.Connection, batch: Batch, requests: list[Request]) -> None:
        fold = _FOLDS[type(requests[0].op)]
        outcomes = fold(conn, batch, [request.op for request in requests])
        for request, (outcome, failed) in zip(requests, outcomes, strict=False):
            request.outcome, request.failed = outcome, failed

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(**{WRITER_OPTION: True})
        return self._conn

    def _reset_connection(self) -> None:
        """After a transient error: roll back on a live connection (a deadlock), else drop it."""
        if self._conn is not None and not self._conn.invalidated:
            try:
                self._conn.rollback()
                if self._conn.dialect.name == "sqlite":
                    raw = lite.sqlite_connection(self._conn)
                    if raw.in_transaction:  # begun by _commit_once, unknown to SQLAlchemy
                        raw.rollback()
                else:
                    pg = driver_connection(self._conn)
                    if pg.broken or pg.closed:
                        raise ConnectionError("connection lost")
                    if pg.info.transaction_status != pq.TransactionStatus.IDLE:
                        pg.rollback()  # begun by the folds on psycopg itself, unknown to SQLAlchemy
                return
            except Exception:  # noqa: BLE001 - the connection is gone after all
                pass
        self._drop_connection()

    def _drop_connection(self) -> None:
        close_quietly(self._conn)
        self._conn = None

    def _deliver(self, requests: list[Request], touched: dict[str, int]) -> None:
        raise NotImplementedError


class GroupWriter(Committer):
    """The store's single writing thread: whatever queued up while the last transaction ran is
    the next transaction (see :class:`Committer` for the arguments)."""

    def __init__(self, engine: sa.Engine, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        super().__init__(engine, loop, **options)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # The operations submitted during the current loop turn, handed to the thread together
        # at its end: what one caller submits at once (a dispatch and its attempt record, a
        # result and the attempt's end) is one transaction, not two in a row.
        self._pending: list[Request] = []
        self._scheduled = False
        self._hand_off_lock = threading.Lock()  # stop() may take the pending ones from another thread
        self._thread = threading.Thread(target=self._main, name="workmesh-store-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Operation) -> asyncio.Future:
        """Queue `op` for this loop turn's hand-off; the future resolves with its result once
        committed (call on the loop)."""
        future = self._loop.create_future()
        self._pending.append(Request(op, future))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._hand_off)
        return future

    def _hand_off(self) -> None:
        with self._hand_off_lock:
            self._scheduled = False
            pending, self._pending = self._pending, []
            if pending:
                self._queue.put(pending)

    def stop(self) -> None:
        """Finish the queued operations, close the connection and end the thread (blocking)."""
        self._hand_off()
        self._queue.put(_STOP)
        self._thread.join()

    def _main(self) -> None:
        stopping = False
        carry: list[Request] = []
        while not stopping or carry:
            batch, carry = carry, []
            if not batch:
                item = self._queue.get()
                if item is _STOP:
                    break
                batch = item
            # Whatever else queued up meanwhile joins, up to max_batch (the rest goes next).
            while len(batch) < self._max_batch and not stopping:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                else:
                    batch.extend(item)
            batch, carry = batch[: self._max_batch], batch[self._max_batch :]
            self._process_or_fail(batch)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    def _deliver(self, requests: list[Request], touched: dict[str, int]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(resolve, requests, touched, self._on_commit)


def resolve(requests: list[Request], touched: dict[str, int], on_commit: Callable[[dict[str, int]], None]) -> None:
    """Give each caller its outcome (all committed together), the last submitted first.

    A batch's later operations follow up on its earlier ones (a job's dispatch record behind
    its create), and whoever waits on them is further along: resolved first, an attempt sends
    its job to the worker before the client's acknowledgement of the same commit is built
    (whose waiter is woken through more futures), instead of after it.
    """
    for request in reversed(requests):
        if request.future.done():  # the caller was cancelled; the operation ran anyway
            continue
        if request.failed:
            request.future.set_exception(request.outcome)
        else:
            request.future.set_result(request.outcome)
    if touched:
        on_commit(touched)
