"""Stored events as a WatchJob stream sends them: serialized, with their seq and kind.

A store that keeps its events serialized (the SQL store's event cache) hands them out as
:class:`Entry` tuples through its optional ``entries`` method, so the progress fan-out
(``services/gateway/_feeds.py``) writes those bytes as they are instead of parsing each event
and serializing it again; :func:`entry_of` makes the entry of an event that is a message.
"""

from __future__ import annotations

from typing import NamedTuple

from workmesh.services.gateway.store._protocol import TERMINAL
from workmesh.v1 import common_pb2

# Entry kinds: what a watcher needs to know of an event without parsing it again.
OTHER, STATUS, TERMINAL_STATUS, NOTIFICATION, PROGRESS = 0, 1, 2, 3, 4


class Entry(NamedTuple):
    """One stored event, serialized (``data``), with its seq and kind."""

    seq: int
    kind: int
    data: bytes

    def event(self) -> common_pb2.JobEvent:
        """The event as a message (parsed again: the entry keeps only the bytes)."""
        return common_pb2.JobEvent.FromString(self.data)


def kind_of(event: common_pb2.JobEvent) -> int:
    """The entry kind of `event`."""
    payload = event.WhichOneof("payload")
    if payload == "progress":
        return PROGRESS
    if payload == "status":
        return TERMINAL_STATUS if event.status.status in TERMINAL else STATUS
    return NOTIFICATION if payload == "notification" else OTHER


def entry_of(event: common_pb2.JobEvent) -> Entry:
    """The entry of `event`, serialized now."""
    return Entry(event.seq, kind_of(event), event.SerializeToString())
