"""Group commit on the event loop: the SQLite writer of a gateway that has its file to itself.

With ``synchronous=NORMAL`` in WAL mode a SQLite commit appends to the WAL file and does not
sync (see ``_sql_engine.create_engine`` for what that keeps across a crash), so a transaction
of a few rows costs tens of microseconds — less than handing it to a writer thread and waking
the loop again (two thread switches, and the GIL passed back and forth while both run, which
the profiles showed as the largest cost per job). Here the operations submitted during one
event-loop turn become one transaction run at the start of the next turn, on the loop itself:
no thread, no hand-off, and still one commit for everything that became ready together.

While the loop is busy (other callbacks are queued to run behind the transaction) it waits for
them, at most ``HOLD_SECONDS``: a saturated gateway gets its unary calls one or two per loop
turn (each SubmitJob, WatchJob and worker event a gRPC completion of its own), so committing
every turn made 1.7 commits per job of a SubmitJob + WatchJob burst against 0.03 for RunJobs,
whose jobs come many to a message; held, the burst's jobs share commits (0.3 per job) and the
dispatches and worker messages that follow a commit come in batches too. An idle loop has
nothing queued and commits at the next turn as before, so a lone job waits for nothing. Nothing
is acknowledged or sent before its commit either way.

The only syncs left are the WAL checkpoints, which copy the WAL into the database file and
fsync both; they run on a thread of their own (:class:`Checkpointer`, with SQLite's automatic
checkpoint switched off on the writing connection), so the loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from typing import Any

import sqlalchemy as sa

from workmesh.services.gateway.store.sql._writer import Committer, Operation, Request, resolve

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 200  # commits between two checkpoints of the WAL (about 1-2 MB of WAL)
# The longest a transaction waits for a busy loop's queued callbacks (their operations join it).
HOLD_SECONDS = 0.005


class LoopWriter(Committer):
    """Commits the operations of each event-loop turn in one transaction, on the loop.

    Only for SQLite with ``synchronous`` OFF or NORMAL (a commit that does not sync): with FULL
    every commit waits for the disk, which belongs on :class:`GroupWriter`'s thread. The
    arguments are :class:`Committer`'s, plus the database file, whose WAL `checkpointer`
    copies back (None: SQLite's own automatic checkpoints, on the loop). Its ``hold`` is the
    longest a transaction waits while the loop has other callbacks queued (``HOLD_SECONDS``;
    0: never; a loop that does not show its queue, not asyncio's own, never holds either).
    """

    def __init__(
        self,
        engine: sa.Engine,
        loop: asyncio.AbstractEventLoop,
        *,
        checkpointer: Checkpointer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(engine, loop, **options)
        self._pending: list[Request] = []
        self._scheduled = False
        self._checkpointer = checkpointer
        self._since_checkpoint = 0
        self.hold = HOLD_SECONDS
        # asyncio's queue of callbacks to run (BaseEventLoop._ready); None: never hold.
        self._ready = getattr(loop, "_ready", None)
        self._held_since = 0.0  # when the queued transaction was first held (0: not held)

    def submit(self, op: Operation) -> asyncio.Future:
        """Queue `op` for this loop turn's transaction; the future resolves once committed."""
        future = self._loop.create_future()
        self._pending.append(Request(op, future))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def stop(self) -> None:
        """Commit what is queued and close the connection (call on the loop)."""
        self._scheduled, self._held_since = False, 0.0
        self._commit_pending()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        # Ours is no longer in the queue: more than one other callback is a loop that is behind.
        if self._ready is not None and len(self._ready) > 1 and self._pending:
            now = time.monotonic()
            if not self._held_since:
                self._held_since = now
            if now - self._held_since < self.hold:
                self._loop.call_soon(self._flush)  # behind what is queued now
                return
        self._held_since = 0.0
        self._scheduled = False
        self._commit_pending()

    def _commit_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self._max_batch):
            self._process_or_fail(pending[start : start + self._max_batch])
        if self._checkpointer is not None and self.commits - self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = self.commits
            self._checkpointer.request()

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            conn = super()._connection()
            if self._checkpointer is not None:
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job
                conn.commit()
        return self._conn  # type: ignore[return-value]

    def _deliver(self, requests: list[Request], touched: dict[str, int]) -> None:
        resolve(requests, touched, self._on_commit)


class Checkpointer:
    """A thread copying the WAL of a SQLite file into the database when asked (PASSIVE: it
    never blocks the writer nor readers; it simply copies what it can)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="workmesh-store-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Checkpoint soon (non-blocking)."""
        self._wanted.set()

    def stop(self) -> None:
        """A last checkpoint, then end the thread (blocking, briefly)."""
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _main(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("job store: WAL checkpoint failed", exc_info=True)
                if self._stopping:
                    return
        finally:
            conn.close()
