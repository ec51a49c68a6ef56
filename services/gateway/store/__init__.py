"""Job stores: the :class:`JobStore` protocol, the in-memory store, the SQL store (``store.sql``)."""

from workmesh.services.gateway.store._audit import ACTIONS, AuditEntry, AuditLog
from workmesh.services.gateway.store._outbox import Delivery, NotifyTarget
from workmesh.services.gateway.store._protocol import (
    REOPENABLE,
    TERMINAL,
    AttemptRecord,
    JobRecord,
    JobStore,
    JobUpdate,
    Reopen,
    reopen_refusal,
)

__all__ = [
    "ACTIONS",
    "REOPENABLE",
    "TERMINAL",
    "AttemptRecord",
    "AuditEntry",
    "AuditLog",
    "Delivery",
    "JobRecord",
    "JobStore",
    "JobUpdate",
    "NotifyTarget",
    "Reopen",
    "reopen_refusal",
]
