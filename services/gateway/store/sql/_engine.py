"""Engines of the SQL job store: URL rules, SQLite settings, migrations, transient errors."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from workmesh.services.core.errors import InvalidArgument, ResourceExhausted, Unavailable, WorkmeshError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Arbitrary constant: replicas starting together on one PostgreSQL take turns migrating.
_MIGRATION_LOCK_KEY = 0x776F726B6D657368  # "workmesh"
_migrate_lock = threading.Lock()  # alembic's module-level context is not thread-safe
WRITER_OPTION = "workmesh_writer"  # execution option marking the writer's connection
# A database host that stops answering (a network partition drops packets; nothing resets the
# connection) must surface as a connection error within seconds, so that the store's retry budget
# (WORKMESH_STORE_RETRY) applies; TCP by itself waits many minutes, and every call hangs meanwhile.
# libpq options; DATABASE_URL query parameters of the same names win.
PG_CONNECT_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def pg_connect_args(url: URL) -> dict[str, int]:
    """libpq options for `url`'s connections: :data:`PG_CONNECT_DEFAULTS` less those the URL sets."""
    return {name: value for name, value in PG_CONNECT_DEFAULTS.items() if name not in url.query}


def normalize_url(url: str) -> URL:
    """Parse a DATABASE_URL; plain ``postgresql://``/``postgres://`` get the psycopg 3 driver.

    Raises:
        InvalidArgument: not a SQLite file URL nor a PostgreSQL URL.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise InvalidArgument("DATABASE_URL", f"not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file::memory:"):
            raise InvalidArgument(
                "DATABASE_URL",
                "SQLite needs a file, e.g. sqlite:///var/workmesh/jobs.db "
                "(an in-memory database cannot be shared by the store's threads)",
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise InvalidArgument("DATABASE_URL", f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://...")


def create_engine(url: URL, *, sqlite_synchronous: str = "NORMAL") -> sa.Engine:
    """An engine for the store's threads (one writer, a few readers).

    SQLite runs in WAL mode so readers never block the writer. With ``synchronous=NORMAL`` (the
    default) a commit is in the WAL file before it is acknowledged, so it survives a crash or
    SIGKILL of the gateway; only an OS crash or power loss can drop the last commits. ``FULL``
    also syncs the WAL at each commit (one fsync per group commit): durable against power loss,
    but a sequential caller pays a disk sync per write. PostgreSQL keeps its own durability
    settings (synchronous_commit, on by default).
    Dead connections are not pinged before use: the store retries a transient error on a fresh
    connection instead, which costs nothing while the database is up.
    """
    if url.get_backend_name() == "sqlite":
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument("sqlite_synchronous", "must be one of OFF, NORMAL, FULL, EXTRA")
        # normalize_url made sure a SQLite URL names a file
        Path(url.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30.0}, pool_size=8, max_overflow=8
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_settings(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # Let SQLAlchemy's "begin" below decide how transactions start (the sqlite3 module
            # would otherwise start them itself, lazily, at the first write).
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            # The writer takes the write lock up front, so that what a batch reads (claim's
            # candidates, an idempotency key) cannot change before it writes — even if another
            # process writes the same file. Readers start plain (deferred) transactions.
            if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                return  # the writer began it itself, on the sqlite3 connection (see _sql_writer)
            immediate = conn.get_execution_options().get(WRITER_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=8, max_overflow=8, pool_recycle=3600, connect_args=pg_connect_args(url))


def upgrade(engine: sa.Engine) -> None:
    """Apply the alembic migrations up to every head (blocking; run it off the event loop).

    Every head: migrations written in parallel may branch from the same revision; each creates
    its own tables, so their order does not matter.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrate_lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit that also ends the migration.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may pass on a new connection or a later try.

    Lost connections, a database shutting down or starting up, deadlocks and serialization
    failures between replicas, and SQLite's "database is locked" (as SQLAlchemy classifies
    them; psycopg's own errors alike: its OperationalError covers deadlocks and serialization
    failures too).
    """
    if isinstance(exc, sqlite3.Error):  # from the statements that bypass SQLAlchemy (_sql_lite)
        message = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)
    if isinstance(exc, psycopg.Error):  # from the statements run on psycopg itself (_pipeline)
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc.orig, sqlite3.Error):
            # sqlite3 raises OperationalError for lasting faults too (no such table, disk I/O).
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return isinstance(exc, (sa_exc.DisconnectionError, ConnectionError))


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error says the disk (or the database's size limit) is full.

    SQLite: SQLITE_FULL, "database or disk is full"; PostgreSQL: SQLSTATE 53100 (disk_full);
    and a plain ENOSPC from the driver.
    """
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(orig).lower()
    if getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "pgcode", None) == "53100":
        return True
    return isinstance(orig, OSError) and orig.errno == errno.ENOSPC


def store_error(exc: Exception) -> Exception:
    """The error a store caller gets for `exc`: Unavailable for a transient fault (after the
    retries), ResourceExhausted for a full disk, `exc` itself otherwise (a bug, or the
    operation's own WorkmeshError)."""
    if isinstance(exc, WorkmeshError):
        return exc
    if is_transient(exc):
        return Unavailable(f"job store unavailable: {exc.__class__.__name__}: {exc}")
    if is_disk_full(exc):
        return ResourceExhausted(
            f"job store: database or disk is full ({exc.__class__.__name__}); "
            f"nothing was stored, retry once space is freed"
        )
    return exc


def close_quietly(conn: sa.Connection | None) -> None:
    """Drop a connection that may be broken; a failing close is of no interest."""
    if conn is None:
        return
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()
