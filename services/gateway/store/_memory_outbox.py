"""The notification outbox of :class:`~workmesh.services.gateway.store._memory.MemoryJobStore`.

The same contract as the SQL store's (store/_outbox.py), kept in a dict; like everything in the
memory store it is lost on exit, so only the SQL stores make notifications survive a restart.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from workmesh.services.gateway.store._outbox import Delivery, NotifyTarget, new_delivery_id
from workmesh.v1 import common_pb2


@dataclass
class _Row:
    job_id: str
    target: NotifyTarget
    next_at: float  # time.time()
    attempts: int = 0
    first_at: dt.datetime | None = None
    last_error: str = ""


class MemoryOutboxMixin:
    """Outbox rows by delivery id; the store's ``create``/``delete`` call the two hooks."""

    _jobs: dict

    def _outbox_rows(self) -> dict[str, _Row]:
        rows = self.__dict__.get("_outbox")
        if rows is None:
            rows = self.__dict__["_outbox"] = {}
        return rows

    def _outbox_created(self, job_id: str, targets: tuple[NotifyTarget, ...]) -> None:
        rows = self._outbox_rows()
        now = time.time()
        for index, target in enumerate(targets, 1):
            rows[new_delivery_id(job_id, index)] = _Row(job_id, target, now)

    def _outbox_deleted(self, job_id: str) -> None:
        rows = self._outbox_rows()
        for key in [k for k, row in rows.items() if row.job_id == job_id]:
            del rows[key]

    async def claim_deliveries(self, limit: int, hold_seconds: float) -> list[Delivery]:
        """Claim up to `limit` due rows of terminal jobs (see JobStore.claim_deliveries)."""
        now = time.time()
        out: list[Delivery] = []
        for key, row in sorted(self._outbox_rows().items(), key=lambda item: item[1].next_at):
            if len(out) >= limit or row.next_at > now:
                break
            entry = self._jobs.get(row.job_id)
            if entry is None or not entry.record.terminal:
                continue
            row.next_at = now + hold_seconds
            if row.first_at is None:
                row.first_at = dt.datetime.fromtimestamp(now, dt.UTC)
            out.append(Delivery(row.job_id, row.target, key, row.attempts, row.first_at))
        return out

    async def retry_delivery(self, delivery_id: str, next_at: dt.datetime, error: str) -> None:
        """Count a failed attempt and make the row due at `next_at`."""
        row = self._outbox_rows().get(delivery_id)
        if row is not None:
            row.attempts += 1
            row.next_at = next_at.timestamp()
            row.last_error = error

    async def end_delivery(
        self, delivery_id: str, delivered: bool, event: common_pb2.JobEvent
    ) -> common_pb2.JobEvent | None:
        """Mark the row delivered or given up and append `event` after the job's terminal status."""
        row = self._outbox_rows().pop(delivery_id, None)  # ended rows go: claims scan only pending ones
        entry = self._jobs.get(row.job_id) if row is not None else None
        if row is None or entry is None:
            return None
        record = entry.record
        record.last_seq += 1
        event.seq = record.last_seq
        if not event.HasField("time"):
            event.time.GetCurrentTime()
        entry.events.append(event)
        entry.wake()
        return event
