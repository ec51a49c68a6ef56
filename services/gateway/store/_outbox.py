"""The notification outbox of the job store: what to tell whom when a job ends.

A job's notification targets are stored with the job, in the transaction that creates it, one
outbox row each. A row becomes due when its job turns terminal: the terminal status is one
committed write, so once a job has ended its notifications are as durable as its status, and a
gateway killed at any point after that finds them due when it starts again (at least once).

Delivery is claimed (the row is held for ``hold_seconds`` by moving its due time forward), so a
gateway that dies mid-delivery leaves the row due again once the hold passes, and two replicas on
one database never deliver the same row at the same time. A delivered or given-up row ends with a
``notification`` event appended to the job's events, after its terminal status.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

__all__ = ["CHANNELS", "DELIVERED", "GAVE_UP", "PENDING", "Delivery", "NotifyTarget", "new_delivery_id"]

CHANNELS = ("webhook", "email")
PENDING, DELIVERED, GAVE_UP = 0, 1, 2


@dataclass(frozen=True, order=True)
class NotifyTarget:
    """One place to notify: ``channel`` is ``"webhook"`` (address: URL) or ``"email"``."""

    channel: str
    address: str


@dataclass(frozen=True)
class Delivery:
    """A due outbox row, claimed for delivery.

    Attributes:
        job_id: the job that ended.
        target: where to deliver.
        delivery_id: the idempotency id sent with every attempt of this row (a receiver that
            sees it twice has seen the same notification twice).
        attempts: attempts made before this one.
        first_at: when the first attempt was claimed (the give-up clock starts there).
    """

    job_id: str
    target: NotifyTarget
    delivery_id: str
    attempts: int
    first_at: dt.datetime


def new_delivery_id(job_id: str, index: int) -> str:
    """The idempotency id of a job's `index`-th notification: readable, and unique across stores."""
    return f"{job_id}-n{index}-{secrets.token_hex(4)}"
