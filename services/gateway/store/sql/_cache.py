"""The recent events of the jobs a SQLite store wrote itself, kept in memory for WatchJob.

A SQLite file serves one gateway process; the gateway opens its store ``exclusive``, which a lock
file enforces (:class:`FileLock`: no other store can open the file meanwhile, not even in the same
process), so every event of a job created by this process went through this store's writer: the events of
such a job, numbered 1..n without gaps, are exactly
what the database holds, and WatchJob (which reads after every wake-up) can be served from
memory instead of a reader thread and a query per wake-up. The writer thread fills the cache
right after each commit and before any caller or watcher is told, so a woken watcher always
finds its events here. A job that was not created by this process (after a restart), or whose
numbering shows a gap, is not cached: reads go to the database. A PostgreSQL store caches its own
events too when asked (``own_events``): other replicas may write the same jobs, so every
notification is checked first (:meth:`EventCache.foreign`) and a job announced past what this
store wrote is dropped before any watcher is woken; the seqs of the transaction being committed
are noted first (:meth:`EventCache.expect`) so that this store's own notification, which may
arrive before the writer thread filled the cache, is not taken for a foreign one.

Bounded: the least recently written jobs are dropped beyond ``max_jobs``. Each event is kept
serialized (about 50 bytes for a progress event, against some 900 for a live message object), so a
job's long progress stream costs a few MB, not hundreds; a read parses what it returns, and
:meth:`EventCache.entries` hands out the bytes themselves with each event's kind (one byte
more per event), which the progress fan-out writes to its watchers as they are.
"""

from __future__ import annotations

import collections
import fcntl
import os
import threading
from pathlib import Path
from typing import Any

from workmesh.services.core.errors import FailedPrecondition
from workmesh.services.gateway.store import TERMINAL
from workmesh.services.gateway.store._entries import Entry, kind_of
from workmesh.services.gateway.store.sql._ops import (
    Append,
    Create,
    Delete,
    DeleteFinishedBefore,
)
from workmesh.services.gateway.store.sql._outbox import EndDelivery
from workmesh.services.gateway.store.sql._reopen import ReopenJob
from workmesh.services.gateway.store.sql._schema import set_timestamp
from workmesh.v1 import common_pb2


def _is_terminal(event: common_pb2.JobEvent) -> bool:
    return event.WhichOneof("payload") == "status" and event.status.status in TERMINAL


class _Log:
    """One job's events 1..n, serialized, their kinds, and whether the last one is a terminal status."""

    __slots__ = ("data", "kinds", "terminal")

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.kinds = bytearray()
        self.terminal = False

    def extend(self, events: list[common_pb2.JobEvent]) -> None:
        self.data.extend(event.SerializeToString() for event in events)
        self.kinds.extend(kind_of(event) for event in events)
        self.terminal = _is_terminal(events[-1])


class EventCache:
    """Events by job id, filled by the writer thread, read on the event loop."""

    def __init__(self, max_jobs: int = 20_000) -> None:
        self._jobs: collections.OrderedDict[str, _Log] = collections.OrderedDict()
        self._max = max_jobs
        self._lock = threading.Lock()
        self._expected: dict[str, int] = {}  # the committing transaction's own seqs
        self.dropped = 0  # jobs dropped on a foreign notification (PostgreSQL)

    def expect(self, touched: dict[str, int]) -> None:
        """Writer thread, inside a transaction about to commit: the last seqs it writes."""
        with self._lock:
            self._expected.update(touched)

    def on_commit(self, requests: list[Any]) -> None:
        """Writer thread: record what the committed operations wrote."""
        with self._lock:
            self._expected.clear()
            for request in requests:
                op = request.op
                if request.failed:
                    continue
                if isinstance(op, Append):
                    self._appended(op.job_id, request.outcome)
                elif isinstance(op, Create):
                    record, created = request.outcome
                    if created:
                        self._created(record)
                elif isinstance(op, ReopenJob):
                    self._appended(op.job_id, [op.event])  # a retried job: its QUEUED event
                elif isinstance(op, Delete):
                    self._jobs.pop(op.job_id, None)
                elif isinstance(op, DeleteFinishedBefore):
                    self._jobs.clear()  # rare: simpler than knowing which ids went
                elif isinstance(op, EndDelivery) and op.job_id:
                    # An event after the terminal status: peek's "last event is terminal" would
                    # no longer hold (notified jobs are not cached anyway, see CreateNotified).
                    self._jobs.pop(op.job_id, None)

    def _created(self, record: Any) -> None:
        event = common_pb2.JobEvent(seq=1, status=common_pb2.StatusChange(status=common_pb2.JOB_STATUS_QUEUED))
        set_timestamp(event.time, record.created_at)
        log = self._jobs[record.job_id] = _Log()
        log.extend([event])
        while len(self._jobs) > self._max:
            self._jobs.popitem(last=False)

    def _appended(self, job_id: str, events: list[common_pb2.JobEvent]) -> None:
        cached = self._jobs.get(job_id)
        if cached is None or not events:
            return
        if events[0].seq != len(cached.data) + 1:
            del self._jobs[job_id]  # a gap: somebody else wrote; the database answers from now on
            return
        cached.extend(events)
        self._jobs.move_to_end(job_id)

    def foreign(self, last_seqs: dict[str, int]) -> dict[str, int]:
        """Loop thread, before waking watchers on a PostgreSQL notification: drop the jobs whose
        announced seq is past what this store wrote (another replica wrote or deleted them).

        Returns:
            The announcements to wake watchers for: all but this store's own writes to jobs it
            caches. Those wake their watchers from the writer once the cache holds the events;
            the notification often comes first, and a watcher woken by it would find nothing
            new here and ask the database.
        """
        wake: dict[str, int] = {}
        with self._lock:
            for job_id, seq in last_seqs.items():
                cached = self._jobs.get(job_id)
                if cached is None:
                    wake[job_id] = seq
                elif seq < 0 or seq > max(len(cached.data), self._expected.get(job_id, 0)):
                    del self._jobs[job_id]
                    self.dropped += 1
                    wake[job_id] = seq
        return wake

    def clear(self) -> None:
        """Forget everything (notifications may have been missed)."""
        with self._lock:
            self._jobs.clear()

    def events(self, job_id: str, after_seq: int, limit: int) -> list[common_pb2.JobEvent] | None:
        """The cached events past `after_seq`, or None when the job is not cached."""
        encoded = self.encoded(job_id, after_seq, limit)
        return None if encoded is None else [common_pb2.JobEvent.FromString(data) for data in encoded]

    def encoded(self, job_id: str, after_seq: int, limit: int) -> list[bytes] | None:
        """The cached events past `after_seq` as serialized ``JobEvent`` messages (seq
        ``after_seq + 1`` on, without gaps), or None when the job is not cached."""
        with self._lock:
            cached = self._jobs.get(job_id)
            return None if cached is None else cached.data[after_seq : after_seq + limit]

    def entries(self, job_id: str, after_seq: int, limit: int) -> list[Entry] | None:
        """The cached events past `after_seq` as :class:`Entry` tuples (the bytes kept, not
        parsed), or None when the job is not cached."""
        with self._lock:
            cached = self._jobs.get(job_id)
            if cached is None:
                return None
            end = after_seq + limit
            data, kinds = cached.data[after_seq:end], cached.kinds[after_seq:end]
        return list(map(Entry, range(after_seq + 1, after_seq + 1 + len(data)), kinds, data))

    def peek(self, job_id: str) -> tuple[int, bool] | None:
        """(last_seq, terminal) if the job is cached, else None."""
        with self._lock:
            cached = self._jobs.get(job_id)
            return None if cached is None else (len(cached.data), cached.terminal)

    def last_seq(self, job_id: str) -> int | None:
        """The job's last event seq if cached, else None."""
        with self._lock:
            cached = self._jobs.get(job_id)
            return None if cached is None else len(cached.data)


class FileLock:
    """``<database>.lock`` held with ``flock`` while a store uses a SQLite file.

    An exclusive store takes it exclusively, other stores shared: an exclusive store and any
    other store never use one file at once (flock conflicts even between two opens in one
    process). The kernel drops the lock when the process dies, so a SIGKILLed gateway never
    blocks its restart.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def take(cls, database: str, *, exclusive: bool) -> FileLock:
        """Lock the file of `database`.

        Raises:
            FailedPrecondition: another store uses it in a conflicting way.
        """
        path = Path(database).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FailedPrecondition(
                f"DATABASE_URL: the SQLite job store {path} is in use by "
                f"{'another process or store' if exclusive else 'a gateway that has it to itself'}; "
                "a SQLite file serves one gateway — run several replicas on PostgreSQL"
            ) from None
        return cls(fd)

    def release(self) -> None:
        """Unlock and close."""
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1
