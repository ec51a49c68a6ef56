"""The audit log in the job store: who did what, when, from where — append-only.

Entries are only ever added (:meth:`AuditLog.record_audit`, or with the job a submit creates:
``JobRecord.audit``) and read (:meth:`AuditLog.list_audit`); no API changes or removes one, and
deleting a job or the retention sweep leaves its entries. The store numbers them (``seq``:
increasing, in commit order per store).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "MemoryAudit"]

# What is recorded (README "What is audited"); share/unshare and series grants record theirs
# under the names reserved here once they exist.
ACTIONS = (
    "submit",
    "cancel",
    "delete",
    "retry",
    "token.create",
    "token.revoke",
    "share",
    "unshare",
    "series.grant",
    "series.revoke",
)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action.

    Attributes:
        action: one of :data:`ACTIONS`.
        target: what it acted on: a job id or a token id.
        tenant, subject: who (the authenticated caller; empty with authentication off).
        peer: from where: the caller's address as gRPC reports it (``ipv4:127.0.0.1:51234``).
        at: when, epoch seconds.
        detail: a short note (e.g. the new job of a retry, the name of a token).
        seq: the store's number of the entry (0 until stored).
    """

    action: str
    target: str
    tenant: str = ""
    subject: str = ""
    peer: str = ""
    at: float = 0.0
    detail: str = ""
    seq: int = 0


@runtime_checkable
class AuditLog(Protocol):
    """The audit part of a job store."""

    async def record_audit(self, entry: AuditEntry) -> None:
        """Append `entry`; returns once it is stored (committed)."""
        ...

    async def list_audit(
        self, *, since: float | None = None, tenant: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with ``seq > after`` (and ``at >= since``, of `tenant`, when given), oldest first."""
        ...


class MemoryAudit:
    """:class:`AuditLog` in process memory (the in-memory job store's)."""

    def __init__(self) -> None:
        self._audit: list[AuditEntry] = []

    def _append_audit(self, entry: AuditEntry) -> None:
        self._audit.append(replace(entry, seq=len(self._audit) + 1))

    async def record_audit(self, entry: AuditEntry) -> None:
        self._append_audit(entry)

    async def list_audit(
        self, *, since: float | None = None, tenant: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        entries: Sequence[AuditEntry] = self._audit[max(after, 0) :]  # seq n is at index n - 1
        out = [e for e in entries if (since is None or e.at >= since) and (tenant is None or e.tenant == tenant)]
        return out[: max(limit, 0)]
