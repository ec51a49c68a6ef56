"""API tokens in the SQL job store (``api_tokens``): the record of each token, never its
secret — only the SHA-256 of it (see ``workmesh.services.core.auth``).

A partial unique index keeps names unique among a tenant's live tokens, on SQLite and
PostgreSQL alike; revoked tokens stay listed (who had access, until when).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from workmesh.services.core.auth import TokenRecord
from workmesh.services.core.errors import InvalidArgument
from workmesh.services.gateway.store.sql._schema import metadata

__all__ = ["SqlTokensMixin", "api_tokens"]

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(16), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.Index(
        "ux_api_tokens_live_name",
        "tenant",
        "name",
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        tenant=row.tenant,
        name=row.name,
        scopes=tuple(row.scopes.split()),
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        created_by=row.created_by,
    )


def _create(conn: sa.Connection, record: TokenRecord) -> None:
    try:
        with conn.begin():
            conn.execute(
                api_tokens.insert().values(
                    token_id=record.token_id,
                    tenant=record.tenant,
                    name=record.name,
                    scopes=" ".join(record.scopes),
                    secret_hash=record.secret_hash,
                    created_at=record.created_at,
                    created_by=record.created_by,
                )
            )
    except sa.exc.IntegrityError:
        raise InvalidArgument(
            "name",
            f"tenant {record.tenant!r} has a live token named {record.name!r}; revoke it first or choose another name",
        ) from None


def _find(conn: sa.Connection, token_id: str) -> TokenRecord | None:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
    return None if row is None else _record(row)


def _list(conn: sa.Connection, tenant: str | None) -> list[TokenRecord]:
    query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.token_id)
    if tenant is not None:
        query = query.where(api_tokens.c.tenant == tenant)
    return [_record(row) for row in conn.execute(query)]


def _revoke(conn: sa.Connection, token_id: str, at: float) -> TokenRecord | None:
    with conn.begin():
        conn.execute(
            api_tokens.update()
            .where((api_tokens.c.token_id == token_id) & api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return _find(conn, token_id)


class SqlTokensMixin:
    """The :class:`~workmesh.services.core.auth.TokenStore` methods of ``SqlJobStore``."""

    _read: Any  # SqlJobStore._read: runs a function on a pooled connection, retrying

    async def create_token(self, record: TokenRecord) -> None:
        await self._read(lambda conn: _create(conn, record))

    async def find_token(self, token_id: str) -> TokenRecord | None:
        return await self._read(lambda conn: _find(conn, token_id))

    async def list_tokens(self, tenant: str | None = None) -> list[TokenRecord]:
        return await self._read(lambda conn: _list(conn, tenant))

    async def revoke_token(self, token_id: str, at: float) -> TokenRecord | None:
        return await self._read(lambda conn: _revoke(conn, token_id, at))
