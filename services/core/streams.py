"""Batching for the long-lived streams (worker Session, gateway RunJobs).

gRPC in Python costs per message, not per byte: both ends of a stream collect what is ready in
one event-loop turn into one message, without waiting on a timer.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

import grpc

from workmesh.services.core.decode import checked
from workmesh.services.core.errors import WorkmeshError, abort

BATCH_BYTES = 4 * 1024 * 1024  # see Outbox


class Outbox:
    """The next message(s) of a stream, built in place: each item is copied once, into them.

    A message holds at most `limit` bytes of items, or one item alone (params and results may
    carry tens of MB: batching several must not exceed the message size limit).

    Args:
        new_message: makes an empty message (e.g. ``SessionReply``).
        field: its repeated field the items go to.
        limit: bytes after which the next item starts a new message.
    """

    __slots__ = ("_field", "_limit", "_new", "_ready", "_size")

    def __init__(self, new_message: Callable[[], Any], field: str, limit: int = BATCH_BYTES) -> None:
        self._new = new_message
        self._field = field
        self._limit = limit
        self._ready: collections.deque[Any] = collections.deque()
        self._size = 0  # bytes in the last message

    def add(self, **fields: Any) -> None:
        """Append an item (the fields of one element of the repeated field)."""
        if not self._ready:
            self._ready.append(self._new())
        items = getattr(self._ready[-1], self._field)
        size = items.add(**fields).ByteSize()
        if self._size and self._size + size > self._limit:
            del items[-1]  # too big to join: it starts the next message (a rare second copy)
            self._ready.append(self._new())
            getattr(self._ready[-1], self._field).add(**fields)
            self._size = 0
        self._size += size

    def take(self) -> Any:
        """The oldest message; the next add starts a new one if that was the last."""
        message = self._ready.popleft()
        if not self._ready:
            self._size = 0
        return message

    def __bool__(self) -> bool:
        return bool(self._ready)


class BatchedStream:
    """The server side of a long-lived bidirectional call that batches what it sends.

    A reader task applies the client's requests (:meth:`_read`); the calling task writes: it
    sends whatever :meth:`_send` queued as one message and sleeps on a future (no timer) while
    nothing is queued. The call ends once the client has half-closed and :meth:`_pending` says
    nothing more will come; :meth:`_close` releases what the subclass holds.

    Args:
        context: the servicer context of the call (read by one task, written by the other).
        new_message: makes an empty reply message.
        field: the reply's repeated field the items go to.
    """

    def __init__(self, context: grpc.aio.ServicerContext, new_message: Callable[[], Any], field: str) -> None:
        self._context = context
        self._outbox = Outbox(new_message, field)
        self._wake: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._items = 0  # requests read so far

    async def run(self) -> None:
        """Serve the call until the client half-closes and nothing is pending, or the call ends.

        A client's mistake that ends the whole call (an item that cannot be parsed) ends it
        with that error's status.
        """
        reader = self._loop.create_task(self._read())
        reader.add_done_callback(self._wake_writer)
        try:
            await self._write(reader)
        except WorkmeshError as exc:
            await abort(self._context, exc)
        finally:
            reader.cancel()
            await self._close(reader)

    async def _next(self) -> Any:
        """The client's next request (``grpc.aio.EOF`` once it half-closed), parsed.

        Raises:
            InvalidArgument: the request's bytes are not a valid message.
        """
        request = await self._context.read()
        self._items += 1
        return checked(request, self._items - 1)

    async def _read(self) -> None:
        raise NotImplementedError

    def _pending(self) -> bool:
        """True while items may still be sent after the client has half-closed."""
        raise NotImplementedError

    async def _close(self, reader: asyncio.Task) -> None:
        """Release what the stream holds; `reader` has been cancelled."""
        raise NotImplementedError

    async def _write(self, reader: asyncio.Task) -> None:
        # The wake-up comes from _send, from the reader ending, or from the subclass when its
        # last pending item ends.
        context = self._context
        while True:
            if not self._outbox:
                if reader.done():
                    error = None if reader.cancelled() else reader.exception()
                    if error is not None:
                        raise error
                    if not self._pending():
                        return
                self._wake = self._loop.create_future()
                await self._wake
                continue
            await context.write(self._outbox.take())

    def _wake_writer(self, _: object = None) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _send(self, **item: Any) -> None:
        """Queue one item (the fields of one element of the reply's repeated field)."""
        self._outbox.add(**item)
        self._wake_writer()
