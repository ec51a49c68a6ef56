"""Grants (sharing) in the SQL job store (``job_grants``): one row per grant, removed on unshare
(the audit log keeps who shared what with whom, and when it ended).

Looked up by (tenant, grantee): the access rule asks only for the grants to one caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from workmesh.services.core.auth import Grant
from workmesh.services.gateway.store.sql._schema import metadata

__all__ = ["SqlGrantsMixin", "job_grants"]

job_grants = sa.Table(
    "job_grants",
    metadata,
    sa.Column("grant_id", sa.String(16), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("grantee", sa.String(300), nullable=False),
    sa.Column("is_group", sa.Boolean, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(64), nullable=False),  # empty for a label grant
    sa.Column("label_key", sa.String(63), nullable=False),
    sa.Column("label_value", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(300), nullable=False, server_default=""),  # migration 0010
    sa.Column("created_by", sa.String(300), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_job_grants_grantee", "tenant", "grantee"),
)


def _grant(row: Any) -> Grant:
    return Grant(
        grant_id=row.grant_id,
        tenant=row.tenant,
        grantee=row.grantee,
        group=bool(row.is_group),
        level=row.level,
        job_id=row.job_id,
        label_key=row.label_key,
        label_value=row.label_value,
        owner=row.owner,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _create(conn: sa.Connection, grant: Grant) -> None:
    with conn.begin():
        conn.execute(
            job_grants.insert().values(
                grant_id=grant.grant_id,
                tenant=grant.tenant,
                grantee=grant.grantee,
                is_group=grant.group,
                level=grant.level,
                job_id=grant.job_id,
                label_key=grant.label_key,
                label_value=grant.label_value,
                owner=grant.owner,
                created_by=grant.created_by,
                created_at=grant.created_at,
            )
        )


def _find(conn: sa.Connection, grant_id: str) -> Grant | None:
    row = conn.execute(sa.select(job_grants).where(job_grants.c.grant_id == grant_id)).first()
    return None if row is None else _grant(row)


def _list(conn: sa.Connection, tenant: str | None, job_id: str | None) -> list[Grant]:
    query = sa.select(job_grants).order_by(job_grants.c.created_at, job_grants.c.grant_id)
    if tenant is not None:
        query = query.where(job_grants.c.tenant == tenant)
    if job_id is not None:
        query = query.where(job_grants.c.job_id == job_id)
    return [_grant(row) for row in conn.execute(query)]


def _to(conn: sa.Connection, tenant: str, subject: str, groups: list[str]) -> list[Grant]:
    c = job_grants.c
    to_subject = (c.grantee == subject) & ~c.is_group
    whom = sa.or_(to_subject, c.grantee.in_(groups) & c.is_group) if groups else to_subject
    query = sa.select(job_grants).where((c.tenant == tenant) & whom).order_by(c.created_at, c.grant_id)
    return [_grant(row) for row in conn.execute(query)]


def _delete(conn: sa.Connection, grant_id: str) -> Grant | None:
    with conn.begin():
        found = _find(conn, grant_id)
        if found is not None:
            conn.execute(job_grants.delete().where(job_grants.c.grant_id == grant_id))
        return found


class SqlGrantsMixin:
    """The :class:`~workmesh.services.core.auth.GrantStore` methods of ``SqlJobStore``."""

    _read: Any  # SqlJobStore._read: runs a function on a pooled connection, retrying

    async def create_grant(self, grant: Grant) -> None:
        await self._read(lambda conn: _create(conn, grant))

    async def find_grant(self, grant_id: str) -> Grant | None:
        return await self._read(lambda conn: _find(conn, grant_id))

    async def list_grants(self, tenant: str | None = None, *, job_id: str | None = None) -> list[Grant]:
        return await self._read(lambda conn: _list(conn, tenant, job_id))

    async def grants_to(self, tenant: str, subject: str, groups: Iterable[str] = ()) -> list[Grant]:
        wanted = sorted(set(groups))
        return await self._read(lambda conn: _to(conn, tenant, subject, wanted))

    async def delete_grant(self, grant_id: str) -> Grant | None:
        return await self._read(lambda conn: _delete(conn, grant_id))
