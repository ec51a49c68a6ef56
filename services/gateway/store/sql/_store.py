"""SqlJobStore: the durable JobStore on a SQLite file (default) or PostgreSQL (``DATABASE_URL``).

Layout: tables and row conversions in ``_schema``, engines/URLs/migrations in
``_engine``, the statements in ``_ops`` (PostgreSQL's folded multi-row forms in
``_fold``, pipelined in two round trips per transaction by ``_pipeline``; SQLite's hot
statements as plain sqlite3 in ``_lite``), group commit on a thread in ``_writer`` and on the
event loop in ``_loop``, waking watchers in ``_notify``.

Why threads and not SQLAlchemy's asyncio extension: writes go through one writer anyway (group
commit: whatever queued up while the last transaction ran is committed together; SQLite admits
one writer at a time), and reads run on a small pool of threads. The event loop only awaits
futures, so it never waits for the database, with the same synchronous SQLAlchemy Core code and
the standard drivers (sqlite3, psycopg) on both databases — no greenlet bridge and no aiosqlite
(itself a thread per connection). Only the PostgreSQL LISTEN connection is asyncio-native
(psycopg's async API). One exception, for speed: the gateway's own SQLite file with
``synchronous=NORMAL`` commits on the loop itself (``_loop.LoopWriter``): such a commit does not
wait for the disk and costs less than the hand-off to a thread; its checkpoints, which do sync,
run on a thread.

Deployment: a SQLite file serves one gateway process (waiters are woken in process only;
leases still work across processes because the writer takes SQLite's write lock up front).
Run several gateway replicas on PostgreSQL, where row leases decide which replica drives a job
and LISTEN/NOTIFY wakes watchers on every replica. Lease times come from each replica's clock,
so replicas need synchronised clocks (NTP), as with any lease.

Durability: a call returns only after its transaction committed. SQLite runs in WAL mode with
``synchronous=NORMAL`` by default (survives a crash or SIGKILL of the process; an OS crash or
power loss may drop the last commits) or FULL (survives those too: a sync per group commit).
If PostgreSQL goes away, calls retry on new connections for ``retry_for`` seconds and then
raise Unavailable; a commit whose outcome was lost with the connection is checked on the new
one, so an acknowledged append is stored exactly once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa

from workmesh.services.core.errors import Unavailable
from workmesh.services.gateway.store import AttemptRecord, JobRecord, JobUpdate, Reopen
from workmesh.services.gateway.store._entries import Entry, entry_of
from workmesh.services.gateway.store.sql import _ops as ops
from workmesh.services.gateway.store.sql import _outbox as outbox
from workmesh.services.gateway.store.sql import _types as types_ops
from workmesh.services.gateway.store.sql._audit import SqlAuditMixin
from workmesh.services.gateway.store.sql._cache import EventCache, FileLock
from workmesh.services.gateway.store.sql._engine import (
    create_engine,
    is_transient,
    normalize_url,
    pg_connect_args,
    store_error,
    upgrade,
)
from workmesh.services.gateway.store.sql._fairshare import SqlFairshareMixin
from workmesh.services.gateway.store.sql._grants import SqlGrantsMixin
from workmesh.services.gateway.store.sql._loop import Checkpointer, LoopWriter
from workmesh.services.gateway.store.sql._notify import PgListener, Waiters, send_notifications
from workmesh.services.gateway.store.sql._reopen import ReopenJob
from workmesh.services.gateway.store.sql._tokens import SqlTokensMixin
from workmesh.services.gateway.store.sql._writer import GroupWriter
from workmesh.v1 import common_pb2

T = TypeVar("T")


INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _bounded(limit: int) -> int:
    """A row limit the database can bind: 0 .. 2^63-1."""
    return max(0, min(int(limit), INT64_MAX))


class SqlJobStore(SqlFairshareMixin, SqlTokensMixin, SqlAuditMixin, SqlGrantsMixin):
    """A JobStore in SQL: jobs, numbered job events, attempts, leases.

    Opening is lazy: the first call (or :meth:`start`, or ``async with``) applies the alembic
    migrations and starts the writer thread (and the LISTEN connection on PostgreSQL).

    Args:
        url: ``sqlite:///path/jobs.db`` or ``postgresql://user:pass@host:port/db`` (the psycopg 3
            driver is used for plain ``postgresql://`` and ``postgres://``).
        retry_for: seconds a call keeps retrying while the database is unreachable before it
            raises Unavailable.
        readers: threads serving reads.
        exclusive: SQLite only: this store is the only one using the file (the gateway's own
            job store). Enforced with a lock file next to it — opening fails while another store
            uses the file — and lets WatchJob read the events this store wrote from memory.
            Several stores may share a file when none is exclusive (tests, tools).
        sqlite_synchronous: SQLite's ``synchronous`` setting: NORMAL (default) keeps every
            acknowledged write across a crash of the process, FULL also across a power loss
            (see ``_engine.create_engine``).
        own_events: PostgreSQL only: serve the events this store wrote itself to its watchers
            from memory (the gateway's own store). A notification announcing a seq past what
            this store wrote (another replica wrote to or deleted the job) drops the job from
            memory before anyone is woken, so from then on it is read from the database; a lost
            LISTEN connection drops everything.

    Raises:
        workmesh.services.core.errors.InvalidArgument: the URL is neither SQLite file nor PostgreSQL.
    """

    def __init__(
        self,
        url: str,
        *,
        retry_for: float = 60.0,
        readers: int = 4,
        sqlite_synchronous: str = "NORMAL",
        exclusive: bool = False,
        own_events: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self._engine = create_engine(self.url, sqlite_synchronous=sqlite_synchronous)
        self._synchronous = sqlite_synchronous.upper()
        self._postgres = self.url.get_backend_name() == "postgresql"
        self._retry_for = retry_for
        self._readers = concurrent.futures.ThreadPoolExecutor(readers, thread_name_prefix="workmesh-store-read")
        self._waiters = Waiters()
        # SQLite serves one process: the events it wrote itself can be read from memory.
        # A SQLite file that one store has to itself (enforced by a lock file, see _open)
        # lets it serve the events it wrote from memory.
        self._exclusive = exclusive and not self._postgres
        self._cache = EventCache() if self._exclusive or (own_events and self._postgres) else None
        self._lock_file: FileLock | None = None
        self._writer: GroupWriter | LoopWriter | None = None
        self._listener: PgListener | None = None
        self._started: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def commits(self) -> int:
        """Transactions the writer committed so far (group commits; for benchmarks)."""
        return 0 if self._writer is None else self._writer.commits

    async def start(self) -> None:
        """Migrate the database and start the writer (and listener); safe to call repeatedly."""
        if self._closed:
            raise Unavailable("job store is closed")
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self._open()
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started.exception()  # retrieved: later callers re-raise it from the await below
                raise
            self._started.set_result(None)
        await self._started

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        path = self.url.database or ""  # SQLite: normalize_url made sure it names a file
        if not self._postgres:
            self._lock_file = FileLock.take(path, exclusive=self._exclusive)
        await self._retrying(loop, lambda: upgrade(self._engine))
        notify = send_notifications if self._postgres else None
        if self._postgres and self._cache is not None:
            cache = self._cache

            def notify(conn: sa.Connection, touched: dict[str, int]) -> None:
                cache.expect(touched)
                send_notifications(conn, touched)

        options = {
            "on_commit": self._waiters.wake,
            "retry_for": self._retry_for,
            "on_thread_commit": self._cache.on_commit if self._cache is not None else None,
        }
        if self._exclusive and self._synchronous in ("OFF", "NORMAL"):
            # Commits that do not sync: cheaper on the loop than handed to a thread.
            self._writer = LoopWriter(self._engine, loop, checkpointer=Checkpointer(path), **options)
        else:
            self._writer = GroupWriter(self._engine, loop, notify=notify, **options)
        if self._postgres:
            # The same connection parameters as the engine's (URL query options such as
            # ``options=-c synchronous_commit=off`` included), in libpq's own syntax.
            _, params = self._engine.dialect.create_connect_args(self.url)
            params.pop("context", None)  # psycopg's adapters, not a libpq parameter
            conninfo = psycopg.conninfo.make_conninfo(**params)
            self._listener = PgListener(conninfo, self._waiters, self._cache, connect_args=pg_connect_args(self.url))
            await self._listener.start()

    async def __aenter__(self) -> SqlJobStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish queued writes, stop the threads, wake waiters and release connections."""
        if self._closed:
            return
        self._closed = True
        if self._lock_file is not None:
            self._lock_file.release()
        if self._listener is not None:
            await self._listener.stop()
        self._waiters.wake_all()
        if isinstance(self._writer, LoopWriter):
            self._writer.stop()  # on the loop: commits what is queued

        def stop_threads() -> None:
            if isinstance(self._writer, GroupWriter):
                self._writer.stop()  # commits what is queued: those callers get their answers
            self._readers.shutdown(wait=True)
            self._engine.dispose()

        await asyncio.get_running_loop().run_in_executor(None, stop_threads)

    # --- plumbing -------------------------------------------------------------------------

    async def _write(self, op: Any) -> Any:
        if self._writer is None:
            await self.start()
        if self._closed or self._writer is None:  # start() sets the writer; close() keeps it
            raise Unavailable("job store is closed")
        return await self._writer.submit(op)

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        if self._writer is None:
            await self.start()

        def run() -> T:
            with self._engine.connect() as conn:
                return fn(conn)

        return await self._retrying(asyncio.get_running_loop(), run, executor=self._readers)

    async def _retrying(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T], executor: concurrent.futures.Executor | None = None
    ) -> T:
        deadline = time.monotonic() + self._retry_for
        delay = 0.02
        while True:
            try:
                return await loop.run_in_executor(executor, fn)
            except Exception as exc:
                if not is_transient(exc):
                    mapped = store_error(exc)
                    if mapped is exc:
                        raise
                    raise mapped from exc
                if time.monotonic() + delay > deadline:
                    raise Unavailable(f"job store unavailable: {exc.__class__.__name__}: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # --- JobStore -------------------------------------------------------------------------

    async def create(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new QUEUED job with its first event; an idempotency key seen before wins.

        A job with ``notify`` targets gets its outbox rows in the same transaction.
        """
        return await self._write(outbox.CreateNotified(job) if job.notify else ops.Create(job))

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        return await self._read(lambda conn: ops.read_job(conn, job_id))

    async def get_by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job created with this idempotency key, or None."""
        if not idempotency_key:
            return None
        return await self._read(lambda conn: ops.read_job_by_key(conn, idempotency_key))

    async def children(self, parent_id: str) -> list[JobRecord]:
        """The jobs created with ``parent_id``, oldest first."""
        return await self._read(lambda conn: ops.read_children(conn, parent_id))

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
        limit = _bounded(limit)
        statuses = tuple(s for s in statuses if INT32_MIN <= s <= INT32_MAX)
        return await self._read(
            lambda conn: ops.read_jobs(conn, workflow_type, statuses, limit, after, labels, parent_id)
        )

    async def append(
        self, job_id: str, events: Sequence[common_pb2.JobEvent], update: JobUpdate | None = None
    ) -> list[common_pb2.JobEvent]:
        """Number and store `events` and apply `update` in one transaction (see JobStore)."""
        return await self._write(ops.Append(job_id, events, update))

    async def events(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[common_pb2.JobEvent]:
        """Stored events with seq > after_seq, in order; empty for an unknown job."""
        if after_seq >= INT64_MAX:
            return []  # no seq is larger (and SQLite cannot bind a bigger integer)
        limit = _bounded(limit)
        if self._cache is not None:
            cached = self._cache.events(job_id, after_seq, limit)
            if cached is not None:
                return cached
        return await self._read(lambda conn: ops.read_events(conn, job_id, after_seq, limit))

    async def entries(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """:meth:`events` as serialized :class:`Entry` tuples: the bytes the event cache keeps
        when it has the job (nothing parsed or serialized again), else the events read, serialized."""
        if self._cache is not None and after_seq < INT64_MAX:
            cached = self._cache.entries(job_id, after_seq, _bounded(limit))
            if cached is not None:
                return cached
        return [entry_of(event) for event in await self.events(job_id, after_seq, limit)]

    async def peek(self, job_id: str) -> tuple[int, bool] | None:
        """(last_seq, terminal) of the job, or None when unknown; from memory when cached."""
        if self._cache is not None:
            state = self._cache.peek(job_id)
            if state is not None:
                return state
        record = await self.get(job_id)
        return None if record is None else (record.last_seq, record.terminal)

    async def wait(self, job_id: str, after_seq: int, timeout: float) -> None:
        """Return once the job has events past `after_seq`, is deleted or unknown, or `timeout` passed."""
        after_seq = min(after_seq, INT64_MAX)
        future = self._waiters.add(job_id, after_seq)  # before reading, so an append in between wakes us
        timer = asyncio.get_running_loop().call_later(timeout, _resolve, future)
        try:
            last_seq = self._cache.last_seq(job_id) if self._cache is not None else None
            if last_seq is None:
                last_seq = await self._read(lambda conn: ops.read_last_seq(conn, job_id))
            if last_seq is None or last_seq > after_seq:
                return
            await future
        finally:
            timer.cancel()
            if not future.done():
                future.cancel()
            self._waiters.discard(job_id, future)

    async def reopen(self, job_id: str, event: common_pb2.JobEvent, reopen: Reopen) -> JobRecord:
        """Make an ended job QUEUED again for a new attempt (see JobStore.reopen)."""
        return await self._write(ReopenJob(job_id, event, reopen))

    async def delete(self, job_id: str) -> bool:
        """Remove the job with its events and attempts; its waiters return at once."""
        return await self._write(ops.Delete(job_id))

    async def start_attempt(
        self, job_id: str, attempt: int, instance_id: str, started_at: dt.datetime | None = None
    ) -> None:
        """Record the start of an attempt (see JobStore)."""
        await self._write(ops.StartAttempt(job_id, attempt, instance_id, started_at))

    async def end_attempt(
        self, job_id: str, attempt: int, outcome: str, reason: str = "", ended_at: dt.datetime | None = None
    ) -> None:
        """Record how an attempt ended (see JobStore)."""
        await self._write(ops.EndAttempt(job_id, attempt, outcome, reason, ended_at))

    async def attempts(self, job_id: str) -> list[AttemptRecord]:
        """The job's attempts by number."""
        return await self._read(lambda conn: ops.read_attempts(conn, job_id))

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, types: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Lease claimable jobs to `owner` (see JobStore); disjoint between concurrent owners."""
        if limit <= 0 or (types is not None and not types):
            return []
        return await self._write(ops.Claim(owner, limit, lease_seconds, None if types is None else tuple(types)))

    async def renew(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend `owner`'s leases; return the ids it still holds."""
        if not job_ids:
            return set()
        return await self._write(ops.Renew(owner, tuple(job_ids), lease_seconds))

    async def release(self, owner: str, job_ids: Sequence[str]) -> None:
        """Give up `owner`'s leases on `job_ids`."""
        if job_ids:
            await self._write(ops.Release(owner, tuple(job_ids)))

    async def finished_before(self, cutoff: dt.datetime, limit: int = 500) -> list[str]:
        """Ids of terminal jobs finished before `cutoff`, oldest first (see JobStore)."""
        return await self._read(lambda conn: ops.read_finished_before(conn, cutoff, limit))

    # --- workflow types seen (see store/_protocol.py) ----------------------------------------
    async def remember_types(self, items: Sequence[tuple[common_pb2.WorkflowType, dt.datetime]]) -> None:
        """Keep each type's declaration with when a worker last served it."""
        if items:
            await self._write(types_ops.RememberTypes(tuple(items)))

    async def known_types(self) -> list[tuple[common_pb2.WorkflowType, dt.datetime]]:
        """Every type remembered, with when a worker last served it."""
        return await self._read(types_ops.read_types)

    async def forget_types(self, names: Sequence[str], before: dt.datetime) -> None:
        """Forget the types of `names` that nobody served since `before`."""
        if names:
            await self._write(types_ops.ForgetTypes(tuple(names), before))

    async def leased(self, owner: str) -> set[str]:
        """Ids of the non-terminal jobs whose unexpired lease `owner` holds (the self-check)."""
        return await self._read(lambda conn: ops.read_leased(conn, owner))

    async def delete_finished_before(self, cutoff: dt.datetime) -> int:
        """Delete terminal jobs finished before `cutoff`; return how many."""
        return await self._write(ops.DeleteFinishedBefore(cutoff))

    # --- notification outbox (store/_outbox.py) ---------------------------------------------
    async def claim_deliveries(self, limit: int, hold_seconds: float) -> list[outbox.Delivery]:
        """Claim due outbox rows of terminal jobs (see JobStore); disjoint between replicas."""
        if limit <= 0:
            return []
        now = dt.datetime.now(dt.UTC)
        if not await self._read(lambda conn: outbox.has_due(conn, now)):
            return []  # the usual answer of a poll, without a write transaction
        return await self._write(outbox.ClaimDeliveries(_bounded(limit), hold_seconds))

    async def retry_delivery(self, delivery_id: str, next_at: dt.datetime, error: str) -> None:
        """Count a failed attempt and make the row due again at `next_at`."""
        await self._write(outbox.RetryDelivery(delivery_id, next_at, error))

    async def end_delivery(
        self, delivery_id: str, delivered: bool, event: common_pb2.JobEvent
    ) -> common_pb2.JobEvent | None:
        """Mark the row ended and append its event after the terminal status (one transaction)."""
        return await self._write(outbox.EndDelivery(delivery_id, delivered, event))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
