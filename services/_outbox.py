"""Batching for the long-lived streams (worker Session, gateway RunJobs).

gRPC in Python costs per message, not per byte: both ends of a stream collect what is ready in
one event-loop turn into one message, without waiting on a timer.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

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
