"""The notification outbox in SQL (see store/_outbox.py for the contract).

``notifications``: one row per (job, target), inserted in the transaction that creates the job
(:class:`CreateNotified`), so a job's targets are stored exactly when the job is. A row is due
once its job's status is terminal — the terminal status and the outbox row are then both
committed, whatever the gateway does next. Claims, retries and the end of a row go through the
writer like every other write; the end appends the job's ``notification`` event in the same
transaction. Rows go with their job (``ON DELETE CASCADE``; SQLite runs with foreign keys on).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from workmesh.services.gateway.store._outbox import DELIVERED, GAVE_UP, PENDING, Delivery, NotifyTarget, new_delivery_id
from workmesh.services.gateway.store._protocol import JobRecord
from workmesh.services.gateway.store.sql._ops import Batch, Create
from workmesh.services.gateway.store.sql._schema import TERMINAL_STATUSES, UtcDateTime, jobs, metadata
from workmesh.v1 import common_pb2

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", UtcDateTime, nullable=False),
    sa.Column("first_at", UtcDateTime),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Index("ix_notifications_due", "state", "next_at"),
    sa.Index("ix_notifications_job", "job_id"),
)
_n = notifications.c


@dataclasses.dataclass
class CreateNotified:
    """Create a job (as :class:`Create` does) and its outbox rows, in one transaction.

    Its own operation type, so the writer runs it on its own (never folded or taken by the
    SQLite fast path); the event cache therefore does not hold notified jobs, which is right:
    their events go on after the terminal status.
    """

    job: JobRecord

    def run(self, conn: sa.Connection, batch: Batch) -> tuple[JobRecord, bool]:
        batch.flush_events(conn)
        record, created = Create(self.job).run(conn, batch)
        if created:
            conn.execute(
                notifications.insert(),
                [
                    {
                        "delivery_id": new_delivery_id(record.job_id, index),
                        "job_id": record.job_id,
                        "channel": target.channel,
                        "address": target.address,
                        "state": PENDING,
                        "attempts": 0,
                        "next_at": batch.now,
                        "first_at": None,
                        "last_error": "",
                    }
                    for index, target in enumerate(self.job.notify, 1)
                ],
            )
            record = dataclasses.replace(record, notify=tuple(self.job.notify))
        return record, created


def has_due(conn: sa.Connection, now: dt.datetime) -> bool:
    """Whether any row is due (a read, so an idle gateway's polls cost no write transaction)."""
    return conn.execute(_due_ids(now, 1)).first() is not None


def _due_ids(now: dt.datetime, limit: int) -> sa.Select:
    return (
        sa.select(_n.delivery_id)
        .select_from(notifications.join(jobs, jobs.c.job_id == _n.job_id))
        .where(_n.state == PENDING, _n.next_at <= now, jobs.c.status.in_(TERMINAL_STATUSES))
        .order_by(_n.next_at)
        .limit(limit)
    )


@dataclasses.dataclass
class ClaimDeliveries:
    limit: int
    hold_seconds: float

    def run(self, conn: sa.Connection, batch: Batch) -> list[Delivery]:
        batch.flush_events(conn)
        now = batch.now
        ids = list(conn.execute(_due_ids(now, self.limit)).scalars())
        if not ids:
            return []
        # The condition again in the UPDATE: on PostgreSQL a replica that claimed the same row
        # first holds its lock, and the re-checked row no longer qualifies — claims are disjoint.
        rows = conn.execute(
            notifications.update()
            .where(_n.delivery_id.in_(ids), _n.state == PENDING, _n.next_at <= now)
            .values(
                next_at=now + dt.timedelta(seconds=self.hold_seconds),
                first_at=sa.func.coalesce(_n.first_at, sa.literal(now, UtcDateTime())),
            )
            .returning(_n.delivery_id, _n.job_id, _n.channel, _n.address, _n.attempts, _n.first_at)
        ).all()
        return sorted(
            (
                Delivery(r.job_id, NotifyTarget(r.channel, r.address), r.delivery_id, r.attempts, r.first_at or now)
                for r in rows
            ),
            key=lambda d: ids.index(d.delivery_id),
        )


@dataclasses.dataclass
class RetryDelivery:
    delivery_id: str
    next_at: dt.datetime
    error: str

    def run(self, conn: sa.Connection, batch: Batch) -> None:
        batch.flush_events(conn)
        conn.execute(
            notifications.update()
            .where(_n.delivery_id == self.delivery_id, _n.state == PENDING)
            .values(attempts=_n.attempts + 1, next_at=self.next_at, last_error=self.error[:2000])
        )


@dataclasses.dataclass
class EndDelivery:
    """Mark a row delivered/given up and append its event after the job's terminal status."""

    delivery_id: str
    delivered: bool
    event: common_pb2.JobEvent

    job_id: str = ""  # filled in by run: the event cache drops the job (see _cache.EventCache)

    def run(self, conn: sa.Connection, batch: Batch) -> common_pb2.JobEvent | None:
        batch.flush_events(conn)
        outcome = self.event.notification
        row = conn.execute(
            notifications.update()
            .where(_n.delivery_id == self.delivery_id, _n.state == PENDING)
            .values(
                state=DELIVERED if self.delivered else GAVE_UP,
                attempts=_n.attempts + 1,
                last_error=outcome.detail[:2000],
            )
            .returning(_n.job_id)
        ).first()
        if row is None:
            return None
        self.job_id = row.job_id
        seq = conn.execute(
            jobs.update()
            .where(jobs.c.job_id == row.job_id, jobs.c.status.in_(TERMINAL_STATUSES))
            .values(last_seq=jobs.c.last_seq + 1)
            .returning(jobs.c.last_seq)
        ).scalar()
        if seq is None:
            return None
        event = self.event
        event.seq = seq
        batch.add_event(row.job_id, event, batch.stamp(event))
        batch.touched[row.job_id] = seq
        return event
