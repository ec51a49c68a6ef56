"""Tombstones of the InfluxDB store, kept in InfluxDB itself so that every results replica sees them.

One point per deleted job in the database ``<db_prefix>_workmesh`` (no job database can have
that name: job ids start with a letter or a digit), measurement ``deleted``, tag ``job``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workmesh.services.clients._model import check_job_id
from workmesh.services.results.stores._lineproto import ident, literal

if TYPE_CHECKING:
    from workmesh.services.results.stores._influx import InfluxStore

__all__ = ["InfluxTombstones"]


class InfluxTombstones:
    """The :class:`~workmesh.services.results.stores._protocol.Tombstones` of an InfluxStore."""

    def __init__(self, store: InfluxStore) -> None:
        self.store = store
        self.db = store.config.db_prefix + "_workmesh"
        self._created = False
        self._known: set[str] = set()

    async def _ensure(self) -> None:
        if not self._created:
            await self.store.query(f"CREATE DATABASE {ident(self.db)}")
            self._created = True

    async def add(self, job_id: str) -> None:
        await self._ensure()
        # a 204 from /write means the point is durable (InfluxDB's WAL is fsynced)
        await self.store._post_lines(self.db, "s", f"deleted,job={check_job_id(job_id)} v=1i 0\n".encode())
        self._known.add(job_id)

    async def contains(self, job_id: str) -> bool:
        if job_id in self._known:
            return True
        await self._ensure()
        result = await self.store.query(f"SELECT count(v) FROM deleted WHERE job = {literal(job_id)}", self.db)
        if any(row[1] for s in result[0]["series"] for row in s.get("values") or []):
            self._known.add(job_id)
            return True
        return False
