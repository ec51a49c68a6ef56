"""WatchJob's stream: the job's events after ``after_seq``, then live ones, up to its end.

The events come as :class:`~workmesh.services.gateway._feeds.Entry` lists from the job's shared
feed (one reader and one serialization per event for all its watchers): the gRPC stream writes
each entry's bytes as they are (:meth:`Watches.write`), the HTTP API parses them for its JSON.
A stream that asked for ``WatchJobRequest.batch`` gets each list in one message, a ``JobEvent``
whose ``batch`` field holds the entries: its bytes are the entries' bytes, each behind the
field's tag and length, so nothing is parsed or serialized again, and the per-message cost of
gRPC (a write, a completion, a syscall) is paid once for all the events ready together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc

from workmesh.services.core.auth import GrantStore
from workmesh.services.core.errors import InvalidArgument, NotFound
from workmesh.services.gateway._access import READ, visible_job
from workmesh.services.gateway._feeds import (
    NOTIFICATION,
    STATUS,
    TERMINAL_STATUS,
    Entry,
    JobFeeds,
    entry_of,
    newest_progress,
    peek,
)
from workmesh.services.gateway._queue_watch import QueueWatch, queue_event
from workmesh.services.gateway.store import JobStore
from workmesh.v1 import common_pb2, gateway_pb2

MAX_SEQ = 2**63 - 1
BATCH_BYTES = 256 * 1024  # a batch message holds entries up to about this size (one at least)
_BATCH = common_pb2.JobEvent.DESCRIPTOR.fields_by_name["batch"].number
assert _BATCH < 16  # its tag is one byte
_BATCH_TAG = bytes([_BATCH << 3 | 2])  # field `batch`, length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def batches(entries: list[Entry], limit: int = BATCH_BYTES) -> Iterator[bytes]:
    """`entries` as serialized ``JobEvent`` messages with only ``batch`` set, in order: as many
    entries in each as fit in about `limit` bytes, and at least one."""
    parts: list[bytes] = []
    size = 0
    for entry in entries:
        if parts and size + len(entry.data) > limit:
            yield b"".join(parts)
            parts, size = [], 0
        parts += (_BATCH_TAG, _varint(len(entry.data)), entry.data)
        size += len(entry.data) + 6
    if parts:
        yield b"".join(parts)


async def _ends_here(store: JobStore, job_id: str, entries: list[Entry], i: int) -> bool:
    """Whether the terminal status ``entries[i]`` is where the job's stream ends: not where a
    retry (``RetryJob``, a new attempt of the same job) went on from."""
    if any(e.kind in (STATUS, TERMINAL_STATUS) for e in entries[i + 1 :]):
        return False
    state = await peek(store, job_id)
    if state is None:
        return True
    last_seq, terminal = state
    if not terminal:
        return False  # retried meanwhile: QUEUED again
    seen = entries[-1].seq
    while last_seq > seen:  # ended again after a retry, beyond this batch (rare)
        more = await store.events(job_id, seen)
        if not more:
            break
        if any(e.WhichOneof("payload") == "status" for e in more):
            return False
        seen = more[-1].seq
    return True


class Watches:
    """The WatchJob streams of one gateway.

    Args:
        store: the job store.
        feeds: the shared per-job readers.
        queue_watch: queue places for streams that ask for them.
        grants: sharing grants (None: the store keeps none).
    """

    def __init__(self, store: JobStore, feeds: JobFeeds, queue_watch: QueueWatch, grants: GrantStore | None) -> None:
        self._store = store
        self._feeds = feeds
        self._queue_watch = queue_watch
        self._grants = grants

    async def write(self, context: grpc.aio.ServicerContext, job_id: str, request: gateway_pb2.WatchJobRequest) -> None:
        """Serve `request` (for `job_id`) on a WatchJob stream's `context`: each event as one
        message, or with ``request.batch`` the events ready together in one message.

        Raises:
            WorkmeshError: as WatchJob's status (bad request, unknown or deleted job).
        """
        stream = self.entries(job_id, request.after_seq, request.queue_updates, request.latest_progress)
        if request.batch:
            async for entries in stream:
                for message in batches(entries):
                    await context.write(message)
        else:
            async for entries in stream:
                for entry in entries:
                    await context.write(entry.data)

    async def entries(
        self, job_id: str, after: int, queue_updates: bool = False, latest_progress: bool = False
    ) -> AsyncIterator[list[Entry]]:
        """The stream of `job_id` after seq `after`, in the lists its entries become available
        in; it ends after the job's terminal event. With `latest_progress`, each list keeps only
        its newest progress event (``WatchJobRequest.latest_progress``).

        Raises:
            WorkmeshError: as WatchJob's status (bad request, unknown or deleted job).
        """
        if after > MAX_SEQ:
            raise InvalidArgument("after_seq", "must be below 2^63 (event numbers are signed 64-bit)")
        store = self._store
        await visible_job(store.get, job_id, READ, self._grants)
        unknown = f"job_id: no job {job_id!r}"
        state = await peek(store, job_id)
        if state is None:
            raise NotFound(unknown)
        feed = self._feeds.open(job_id, state[0])
        watcher = self._queue_watch.watch(job_id) if queue_updates else None
        try:
            entries = await feed.read(after)
            last_seq = after
            while True:
                if not entries:
                    state = await peek(store, job_id)
                    if state is None:
                        raise NotFound(unknown)
                    last_seq, terminal = state
                    if terminal and after >= last_seq:
                        return  # ended (the client may have asked to start after its last event)
                for i, entry in enumerate(entries):
                    if entry.kind == TERMINAL_STATUS and await _ends_here(store, job_id, entries, i):
                        yield newest_progress(entries[: i + 1]) if latest_progress else entries[: i + 1]
                        return
                if entries:
                    yield newest_progress(entries) if latest_progress else entries
                    after = last_seq = entries[-1].seq
                    if entries[-1].kind == NOTIFICATION:
                        # Only after the terminal status: once caught up the stream ends at the
                        # top instead of waiting for an event that will not come.
                        entries = await feed.read(after)
                        continue
                unknown = f"job_id: job {job_id!r} was deleted"
                # Woken by the job's next event, even when the client asked for events beyond it.
                if watcher is None:
                    await feed.wait(min(after, last_seq))
                else:
                    if (place := self._queue_watch.take(watcher)) is not None:
                        yield [entry_of(queue_event(after, place))]
                    await watcher.wait(feed.wait(min(after, last_seq)))
                entries = await feed.read(after)
        finally:
            if watcher is not None:
                self._queue_watch.unwatch(watcher)
            self._feeds.close(feed)
