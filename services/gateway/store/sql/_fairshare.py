"""What the scheduler keeps in the SQL job store: decayed usage per owner and finished runtimes.

``fair_usage`` has one row per (tenant, user): decayed worker-seconds ``value`` as of
``as_of`` (wall-clock seconds). Replicas on one database add their charges to the same rows
(row-locked on PostgreSQL, SQLite has one writer), decaying the stored value to the charge's
time first, and read the sum back, so every replica orders owners by the same usage.

``job_runtimes`` keeps the runtime of each succeeded job with its type, version and numeric
params (JSON), independent of job retention: the estimator learns from it at start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from workmesh.services.gateway.dispatch._fairshare import Owner
from workmesh.services.gateway.store.sql._schema import metadata

__all__ = ["SqlFairshareMixin", "fair_usage", "job_runtimes"]

fair_usage = sa.Table(
    "fair_usage",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("as_of", sa.Float, nullable=False),
)

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

job_runtimes = sa.Table(
    "job_runtimes",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("workflow_type", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("runtime_s", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Index("ix_job_runtimes_type_version", "workflow_type", "version"),
)


def _read_usage(conn: sa.Connection) -> dict[Owner, tuple[float, float]]:
    rows = conn.execute(sa.select(fair_usage.c.tenant, fair_usage.c.user, fair_usage.c.value, fair_usage.c.as_of))
    return {Owner(t, u): (v, a) for t, u, v, a in rows}


def _add_usage(
    conn: sa.Connection, charges: Mapping[Owner, tuple[float, float]], half_life_s: float
) -> dict[Owner, tuple[float, float]]:
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(fair_usage)
    with conn.begin():
        for owner, (value, at) in sorted(charges.items()):  # one lock order: no deadlocks
            conn.execute(
                insert.values(tenant=owner.tenant, user=owner.user, value=0.0, as_of=at).on_conflict_do_nothing()
            )
            key = (fair_usage.c.tenant == owner.tenant) & (fair_usage.c.user == owner.user)
            old, as_of = conn.execute(
                sa.select(fair_usage.c.value, fair_usage.c.as_of).where(key).with_for_update()
            ).one()
            if at >= as_of:
                new, new_at = old * math.pow(2.0, -(at - as_of) / half_life_s) + value, at
            else:
                new, new_at = old + value * math.pow(2.0, -(as_of - at) / half_life_s), as_of
            conn.execute(fair_usage.update().where(key).values(value=new, as_of=new_at))
        return _read_usage(conn)


def _add_runtimes(conn: sa.Connection, rows: Sequence[tuple[str, str, dict[str, float], float, float]]) -> None:
    with conn.begin():
        conn.execute(
            job_runtimes.insert(),
            [
                {
                    "workflow_type": t,
                    "version": v,
                    "params": json.dumps(p, sort_keys=True),
                    "runtime_s": r,
                    "finished_at": f,
                }
                for t, v, p, r, f in rows
            ],
        )


def _read_runtimes(conn: sa.Connection, limit: int) -> list[tuple[str, str, dict[str, float], float]]:
    newest = (
        sa.select(
            job_runtimes.c.id,
            job_runtimes.c.workflow_type,
            job_runtimes.c.version,
            job_runtimes.c.params,
            job_runtimes.c.runtime_s,
        )
        .order_by(job_runtimes.c.id.desc())
        .limit(limit)
    )
    rows = list(conn.execute(newest))
    rows.reverse()
    return [(t, v, json.loads(p), r) for _, t, v, p, r in rows]


class SqlFairshareMixin:
    """The optional scheduler methods of ``SqlJobStore`` (see ``_jobqueue.JobQueue``)."""

    _read: Any  # SqlJobStore._read: runs a function on a pooled connection, retrying

    async def load_usage(self) -> dict[Owner, tuple[float, float]]:
        """Every owner's stored decayed usage: ``owner -> (worker-seconds, as of)``."""
        return await self._read(_read_usage)

    async def add_usage(
        self, charges: Mapping[Owner, tuple[float, float]], half_life_s: float
    ) -> dict[Owner, tuple[float, float]]:
        """Add decayed worker-seconds ``owner -> (value, at)``; return every owner's usage."""
        return await self._read(lambda conn: _add_usage(conn, charges, half_life_s))

    async def add_runtimes(self, rows: Sequence[tuple[str, str, dict[str, float], float, float]]) -> None:
        """Store finished runs: (type, version, numeric params, runtime seconds, finished at)."""
        if rows:
            await self._read(lambda conn: _add_runtimes(conn, rows))

    async def load_runtimes(self, limit: int) -> list[tuple[str, str, dict[str, float], float]]:
        """The newest `limit` finished runs, oldest first: (type, version, params, runtime seconds)."""
        return await self._read(lambda conn: _read_runtimes(conn, limit))
