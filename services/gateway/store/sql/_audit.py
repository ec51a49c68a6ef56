"""The audit log in the SQL job store (``audit_log``): append-only, numbered by ``seq``.

Rows are written through the group-commit writer: a submit's entry with its job, by the
``Create`` of that job in the same transaction (``Batch.add_audit``); any other entry as an
:class:`AppendAudit` operation of its own, committed with whatever else is in that batch. No
statement here updates or deletes a row (and no foreign key ties a row to its job, so deleting
the job keeps it).

``seq`` is the database's auto-number, taken at insert: with several gateway replicas on one
PostgreSQL database, an entry can commit just after one with a higher ``seq``, so a reader paging
by ``after`` at that moment may pass it by; reading again with ``since`` finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from workmesh.services.gateway.store._audit import AuditEntry
from workmesh.services.gateway.store.sql._schema import metadata

if TYPE_CHECKING:
    from workmesh.services.gateway.store.sql._ops import Batch

__all__ = ["AUDIT_COLUMNS", "INSERT_AUDIT_SQLITE", "AppendAudit", "SqlAuditMixin", "audit_log", "audit_row"]

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("peer", sa.String(300), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
)

AUDIT_COLUMNS = ("at", "tenant", "subject", "peer", "action", "target", "detail")
_MARKS = ", ".join("?" * len(AUDIT_COLUMNS))
INSERT_AUDIT_SQLITE = f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({_MARKS})"


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """The column values of an entry (its ``seq`` is the database's)."""
    return {
        "at": entry.at,
        "tenant": entry.tenant[:200],
        "subject": entry.subject[:300],
        "peer": entry.peer[:300],
        "action": entry.action[:32],
        "target": entry.target[:200],
        "detail": entry.detail,
    }


@dataclass
class AppendAudit:
    """Append one entry (a writer operation)."""

    entry: AuditEntry

    def run(self, conn: sa.Connection, batch: Batch) -> None:
        batch.add_audit(self.entry)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        tenant=row.tenant,
        subject=row.subject,
        peer=row.peer,
        action=row.action,
        target=row.target,
        detail=row.detail,
    )


def _list(conn: sa.Connection, since: float | None, tenant: str | None, after: int, limit: int) -> list[AuditEntry]:
    query = sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(limit)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if tenant is not None:
        query = query.where(audit_log.c.tenant == tenant)
    return [_entry(row) for row in conn.execute(query)]


class SqlAuditMixin:
    """The :class:`~workmesh.services.gateway.store.AuditLog` methods of ``SqlJobStore``."""

    _read: Any  # SqlJobStore._read: runs a function on a pooled connection, retrying
    _write: Any  # SqlJobStore._write: an operation through the group-commit writer

    async def record_audit(self, entry: AuditEntry) -> None:
        await self._write(AppendAudit(entry))

    async def list_audit(
        self, *, since: float | None = None, tenant: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        limit = max(0, min(limit, 10_000))
        return await self._read(lambda conn: _list(conn, since, tenant, after, limit))
