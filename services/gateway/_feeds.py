"""Progress fan-out: one reader per watched job, its events serialized once for every watcher.

Without it each WatchJob stream waits on the store by itself (a future and a timer per wait),
reads the job's events by itself and serializes each event again: 500 watchers of 100 jobs did
all of that 500 times per event. A :class:`JobFeed` is shared by the watchers of one job: one
pump task waits on the store, reads each new batch of events once as :class:`Entry` tuples
(serialized: the bytes the store keeps, where it keeps them so — the SQL store's event cache —
else serialized once here) and wakes the job's watchers together. Each watcher keeps only a cursor (the
seq it has sent), so no watcher has a buffer of its own: a slow one reads on from the feed's
window of recent entries, and one that fell behind the window (or replays from an old seq)
reads the store at its own pace, as before. Every watcher thus gets every event of its job, in
order, the terminal one included, and a watcher that goes away frees nothing but its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from workmesh.services.gateway.store import JobStore
from workmesh.services.gateway.store._entries import (
    NOTIFICATION,
    OTHER,
    PROGRESS,
    STATUS,
    TERMINAL_STATUS,
    Entry,
    entry_of,
)

__all__ = [
    "NOTIFICATION",
    "OTHER",
    "PROGRESS",
    "STATUS",
    "TERMINAL_STATUS",
    "Entry",
    "JobFeed",
    "JobFeeds",
    "entry_of",
    "newest_progress",
    "peek",
]

log = logging.getLogger(__name__)

WINDOW = 2048  # recent entries a feed keeps per job (trimmed to this when twice as many)


def entries_reader(store: JobStore) -> Callable[[str, int, int], Awaitable[list[Entry]]]:
    """How to read a job's stored events as entries from `store`: its own ``entries`` (the
    bytes it keeps, not parsed and serialized again) when it has one, else its events."""
    own = getattr(store, "entries", None)
    if own is not None:
        return own

    async def read(job_id: str, after_seq: int, limit: int = 1000) -> list[Entry]:
        return [entry_of(event) for event in await store.events(job_id, after_seq, limit)]

    return read


class JobFeed:
    """The shared reader of one job's events (see the module docstring); made by :class:`JobFeeds`."""

    def __init__(self, store: JobStore, job_id: str, idle: float, window: int = WINDOW) -> None:
        self._store = store
        self._entries_of = entries_reader(store)
        self.job_id = job_id
        self._idle = idle
        self._window = window
        self._entries: list[Entry] = []
        self._base = 0  # seq before _entries[0]
        self._started = False
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.watchers = 0

    @property
    def last(self) -> int:
        """The last seq the feed has read."""
        return self._base + len(self._entries)

    def start(self, last_seq: int) -> None:
        """Begin following after `last_seq` (the job's last event when the first watcher came)."""
        self._base, self._started = last_seq, True
        self._loop = asyncio.get_running_loop()  # kept: asking for it costs a getpid() each time
        self._task = self._loop.create_task(self._pump(), name=f"feed {self.job_id}")

    async def read(self, after: int, limit: int = 1000) -> list[Entry]:
        """Entries with seq > `after`, in order, without gaps (at most `limit`): from the
        feed's window when it holds them, else read from the store for this
        caller alone."""
        base = self._base
        if self._started and after >= base:
            start = after - base
            return self._entries[start : start + limit]
        return await self._entries_of(self.job_id, after, limit)

    async def wait(self, after: int) -> None:
        """Return once the feed has read past `after`, when the job may have changed otherwise
        (deleted; the store's idle timeout), or at once if it already has.

        Raises:
            Exception: the store error the feed's reader stopped on.
        """
        if self._error is not None:
            raise self._error
        if self.last > after or (self._task is not None and self._task.done()):
            return  # a reader that has stopped: its job is gone, the watcher finds out
        future = (self._loop or asyncio.get_running_loop()).create_future()
        self._waiters.append(future)
        try:
            await future
        finally:
            if not future.done():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)

    async def _pump(self) -> None:
        store, job_id = self._store, self.job_id
        try:
            while True:
                await store.wait(job_id, self.last, self._idle)
                entries = await self._entries_of(job_id, self.last, 1000)
                if entries:
                    self._add(entries)
                self._wake()
                if not entries and await peek(store, job_id) is None:
                    return  # deleted: the watchers find out themselves
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("feed of job %s: %s", job_id, exc)
            self._error = exc
            self._wake()

    def _add(self, entries: list[Entry]) -> None:
        if entries[0].seq != self.last + 1:  # not expected from a store; start the window anew
            self._entries.clear()
            self._base = entries[0].seq - 1
        self._entries.extend(entries)
        if len(self._entries) > 2 * self._window:
            drop = len(self._entries) - self._window
            del self._entries[:drop]
            self._base += drop

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        """Stop the reader and wake whoever still waits."""
        if self._task is not None:
            self._task.cancel()
        self._wake()


def newest_progress(entries: list[Entry]) -> list[Entry]:
    """`entries` without the progress events that a later one in the list supersedes (the
    newest progress wins; every other entry stays, in order)."""
    last = -1
    count = 0
    for i, entry in enumerate(entries):
        if entry.kind == PROGRESS:
            last, count = i, count + 1
    if count < 2:
        return entries
    return [entry for i, entry in enumerate(entries) if entry.kind != PROGRESS or i == last]


async def peek(store: JobStore, job_id: str) -> tuple[int, bool] | None:
    """(last_seq, terminal) of a job, or None when unknown — from memory when the store can."""
    peek = getattr(store, "peek", None)
    if peek is not None:
        return await peek(job_id)
    record = await store.get(job_id)
    return None if record is None else (record.last_seq, record.terminal)


class JobFeeds:
    """The feeds of the jobs being watched, one per job, alive while it has watchers.

    Args:
        store: the job store the events come from.
        idle: seconds a feed waits on the store before waking its watchers to look again.
        window: recent entries a feed keeps (a watcher further behind reads the store).
    """

    def __init__(self, store: JobStore, idle: float = 30.0, window: int = WINDOW) -> None:
        self._store = store
        self._idle = idle
        self._window = window
        self._feeds: dict[str, JobFeed] = {}

    def __len__(self) -> int:
        """How many jobs have a feed (are being watched)."""
        return len(self._feeds)

    def open(self, job_id: str, last_seq: int) -> JobFeed:
        """The feed of `job_id`, started after `last_seq` if it is new; pair with :meth:`close`."""
        feed = self._feeds.get(job_id)
        if feed is None or feed._error is not None or (feed._task is not None and feed._task.done()):
            feed = self._feeds[job_id] = JobFeed(self._store, job_id, self._idle, self._window)
            feed.start(last_seq)
        feed.watchers += 1
        return feed

    def close(self, feed: JobFeed) -> None:
        """A watcher of `feed` is done; the last one stops it."""
        feed.watchers -= 1
        if feed.watchers <= 0:
            feed.close()
            if self._feeds.get(feed.job_id) is feed:
                del self._feeds[feed.job_id]
