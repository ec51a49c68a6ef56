"""Queue places for WatchJob streams that ask for them (``WatchJobRequest.queue_updates``).

Every such stream registers its job here. A change of the queue (a job queued, started, ended or
removed) schedules one refresh, at most every ``interval`` seconds, that simulates the queue once
for all registered jobs (``JobQueue.places``) and wakes only the streams whose job's place differs
from the one they sent last. So the cost of a burst of changes is one simulation plus a dict
lookup per watched job, whatever the number of watchers — not a simulation per watcher per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from workmesh.v1 import common_pb2

__all__ = ["QueueWatch", "QueueWatcher", "queue_event"]

Place = tuple[int, int, float | None]  # (position, queued of its type, expected start)
DEFAULT_INTERVAL = 0.2


def _same(a: Place | None, b: Place | None) -> bool:
    # Expected starts move by fractions of a second as estimates are re-simulated: whole
    # seconds are what a client shows.
    if a is None or b is None:
        return a is b
    start_a, start_b = a[2], b[2]
    if start_a is None or start_b is None:
        return a[:2] == b[:2] and start_a is start_b
    return a[:2] == b[:2] and round(start_a) == round(start_b)


def queue_event(seq: int, place: Place) -> common_pb2.JobEvent:
    """The (unstored) JobEvent telling a queued job's place; `seq` is the stream's position."""
    position, queued, start = place
    event = common_pb2.JobEvent(seq=seq, queue=common_pb2.QueuePlace(position=position, queued=queued))
    event.time.GetCurrentTime()
    if start is not None:
        event.queue.expected_start.FromDatetime(dt.datetime.fromtimestamp(start, dt.UTC))
    return event


class QueueWatcher:
    """One stream's registration: the place to send next, and a wake-up when it changes."""

    __slots__ = ("_next", "_sent", "_wake", "job_id")

    def __init__(self, job_id: str, place: Place | None) -> None:
        self.job_id = job_id
        self._sent: Place | None = None
        self._next = place
        self._wake = asyncio.Event()

    def update(self, place: Place | None) -> None:
        self._next = place
        if place is not None and not _same(place, self._sent):
            self._wake.set()

    def take(self) -> Place | None:
        """The place to send now (None: unchanged since the last one sent, or not queued here)."""
        self._wake.clear()
        place = self._next
        if place is None or _same(place, self._sent):
            return None
        self._sent = place
        return place

    async def wait(self, waiting: Coroutine[Any, Any, None]) -> None:
        """Await `waiting` (the store's wait for the job's next event), or a change of place."""
        if self._wake.is_set():
            waiting.close()  # a coroutine not started
            return
        store = asyncio.ensure_future(waiting)
        moved = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((store, moved), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (store, moved):
                task.cancel()
            for task in (store, moved):
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class QueueWatch:
    """Feeds queue places to the registered watchers of one dispatcher's queue.

    Args:
        queue: the dispatcher's ``JobQueue``.
        versions: ``() -> {type: version}`` of the live types (for runtime estimates).
        interval: seconds between two refreshes at most (changes in between are coalesced).
    """

    def __init__(self, queue, versions: Callable[[], Mapping[str, str]], *, interval: float = DEFAULT_INTERVAL):
        self._queue = queue
        self._versions = versions
        self._interval = interval
        self._watchers: dict[str, set[QueueWatcher]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        queue.on_change(self._changed)

    @property
    def watched(self) -> int:
        """How many streams are registered."""
        return sum(len(w) for w in self._watchers.values())

    def watch(self, job_id: str) -> QueueWatcher:
        """Register a stream of `job_id`; its first place is the current one."""
        watcher = QueueWatcher(job_id, self._queue.place(job_id, self._versions()))
        self._watchers.setdefault(job_id, set()).add(watcher)
        return watcher

    def take(self, watcher: QueueWatcher) -> Place | None:
        """The place `watcher` should send now: changed since its last, and its job still queued."""
        place = watcher.take()
        return place if place is not None and self._queue.scheduler.is_queued(watcher.job_id) else None

    def unwatch(self, watcher: QueueWatcher) -> None:
        peers = self._watchers.get(watcher.job_id)
        if peers is not None:
            peers.discard(watcher)
            if not peers:
                del self._watchers[watcher.job_id]

    def _changed(self) -> None:
        if not self._watchers or self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # changed outside a loop (a unit test driving the queue): no stream
            return
        self._handle = loop.call_at(max(loop.time(), self._last + self._interval), self._refresh)

    def _refresh(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        if not self._watchers:
            return
        places = self._queue.places(self._watchers, self._versions())
        for job_id, watchers in self._watchers.items():
            place = places.get(job_id)
            for watcher in watchers:
                watcher.update(place)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
