"""Waking WatchJob callers when events are appended: in-process waiters and PostgreSQL LISTEN.

Every store keeps the futures of its waiting callers by job id. Its own commits wake them
directly. On PostgreSQL every transaction that adds events also sends
``NOTIFY workmesh_jobs, '<job_id> <last_seq>,...'`` (a trigger on job_events, one notification
per statement; ``<job_id> -1`` for a deleted job; delivered only at COMMIT), and every store
holds one listening connection that wakes its local waiters — so a WatchJob served by one replica follows
the events written by another without polling. If the listening connection breaks, all waiters
are woken (they re-read; a spurious wake-up is allowed) and the listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
import sqlalchemy as sa

log = logging.getLogger(__name__)
CHANNEL = "workmesh_jobs"


class Waiters:
    """Futures of the callers waiting for events past some seq of a job (loop thread only)."""

    def __init__(self) -> None:
        self._by_job: dict[str, dict[asyncio.Future[None], int]] = {}

    def add(self, job_id: str, after_seq: int) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._by_job.setdefault(job_id, {})[future] = after_seq
        return future

    def discard(self, job_id: str, future: asyncio.Future[None]) -> None:
        futures = self._by_job.get(job_id)
        if futures is not None:
            futures.pop(future, None)
            if not futures:
                del self._by_job[job_id]

    def wake(self, last_seqs: dict[str, int]) -> None:
        """Wake the waiters whose job now has events past theirs; a seq of -1 wakes all of the job's."""
        for job_id, last_seq in last_seqs.items():
            futures = self._by_job.get(job_id)
            if not futures:
                continue
            for future, after_seq in list(futures.items()):
                if last_seq < 0 or last_seq > after_seq:
                    del futures[future]
                    if not future.done():
                        future.set_result(None)
            if not futures:
                del self._by_job[job_id]

    def wake_all(self) -> None:
        self.wake(dict.fromkeys(self._by_job, -1))


def send_notifications(conn: sa.Connection, touched: dict[str, int]) -> None:
    """Queue a NOTIFY for each deleted job in the current transaction (sent at COMMIT).

    New events need none here: a trigger on ``job_events`` (migration 0001) announces them in
    the inserting statement itself, which saves a round trip per group commit.
    """
    deleted = [f"{job_id} -1" for job_id, seq in touched.items() if seq < 0]
    if not deleted:
        return
    payloads = [",".join(deleted[i : i + 80]) for i in range(0, len(deleted), 80)]
    conn.execute(
        sa.text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
        {"channel": CHANNEL, "payloads": payloads},
    )


def parse_payload(payload: str) -> dict[str, int]:
    """``"<job_id> <seq>,<job_id> <seq>,..."`` as a map (malformed parts are ignored)."""
    last_seqs: dict[str, int] = {}
    for part in payload.split(","):
        job_id, _, seq = part.partition(" ")
        if job_id and seq.lstrip("-").isdigit():
            last_seqs[job_id] = int(seq)
    return last_seqs


class PgListener:
    """One LISTEN connection per store, feeding :class:`Waiters`.

    Args:
        conninfo: a libpq connection string or ``postgresql://`` URL.
        waiters: whom to wake.
        connect_args: extra libpq options (timeouts, keepalives) for the connection.
    """

    def __init__(self, conninfo: str, waiters: Waiters, cache=None, connect_args: dict | None = None) -> None:
        self._conninfo = conninfo
        self._connect_args = dict(connect_args or {})
        self._waiters = waiters
        self._cache = cache  # an EventCache of this store's own events: told of others' writes first
        self._task: asyncio.Task | None = None
        self._listening = asyncio.Event()

    async def start(self, timeout: float = 30.0) -> None:
        """Start listening; return once the first LISTEN is in place (or after `timeout`)."""
        self._task = asyncio.create_task(self._run(), name="workmesh-store-listener")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _forget_all(self) -> None:
        if self._cache is not None:
            self._cache.clear()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, **self._connect_args
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if self._listening.is_set():
                        # Events committed while we were away were not announced to us.
                        self._forget_all()
                        self._waiters.wake_all()
                    self._listening.set()
                    delay = 0.05
                    async for note in conn.notifies():
                        last_seqs = parse_payload(note.payload)
                        if self._cache is not None:
                            last_seqs = self._cache.foreign(last_seqs)  # this store's own: woken by its writer
                        self._waiters.wake(last_seqs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect
                log.warning("job store listener: %s: %s; reconnecting", exc.__class__.__name__, exc)
                self._forget_all()
                self._waiters.wake_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
