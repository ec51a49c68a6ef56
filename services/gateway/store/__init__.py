"""Job stores: the :class:`JobStore` protocol, the in-memory store, the SQL store (``store.sql``)."""

from workmesh.services.gateway.store._outbox import Delivery, NotifyTarget
from workmesh.services.gateway.store._protocol import TERMINAL, AttemptRecord, JobRecord, JobStore, JobUpdate

__all__ = ["TERMINAL", "AttemptRecord", "Delivery", "JobRecord", "JobStore", "JobUpdate", "NotifyTarget"]
