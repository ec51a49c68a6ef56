"""Who owns a job's series: the (tenant, subject) recorded with them, next to the tombstones.

With authentication on, the results service learns a job's owner from the write capability the
gateway signed for the attempt (see :mod:`workmesh.services.core.auth`), records it before the
job's first batch is stored, and checks every ListSeries/ReadSeries against it — so the results
service applies the gateway's job rules without asking the gateway. A record is written once
and kept for good (as tombstones are): a job's owner never changes, and job ids are not reused.

* Parquet: a small JSON file ``<root>/_owners/<job_id>`` (written to a temporary name, fsynced,
  renamed), so that every results process on the same directory sees it.
* InfluxDB: one point per job in ``<db_prefix>_workmesh`` (the tombstones' database),
  measurement ``owner``, tag ``job``, string fields ``tenant`` and ``subject``.
* Any other store (tests): in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Protocol

from workmesh.services.clients._model import check_job_id
from workmesh.services.results.stores._influx import InfluxStore
from workmesh.services.results.stores._lineproto import ident, literal
from workmesh.services.results.stores._parquet import ParquetStore
from workmesh.services.results.stores._protocol import SeriesStore

__all__ = ["FileOwners", "InfluxOwners", "MemoryOwners", "Owners", "owners_of"]

OWNERS = "_owners"  # job ids cannot start with "_": no clash with job directories


class Owners(Protocol):
    """The durable owner records of a store's jobs."""

    async def get(self, job_id: str) -> tuple[str, str] | None:
        """The (tenant, subject) of `job_id`, or None when none was recorded."""

    async def set(self, job_id: str, tenant: str, subject: str) -> None:
        """Record the owner of `job_id`; durable when this returns."""


class MemoryOwners:
    """Owner records of one process (stores without a place of their own)."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[str, str]] = {}

    async def get(self, job_id: str) -> tuple[str, str] | None:
        return self._owners.get(job_id)

    async def set(self, job_id: str, tenant: str, subject: str) -> None:
        self._owners[job_id] = (tenant, subject)


class FileOwners:
    """Owner records as JSON files ``<directory>/<job_id>``."""

    def __init__(self, directory: str | os.PathLike, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self._known: dict[str, tuple[str, str]] = {}

    async def get(self, job_id: str) -> tuple[str, str] | None:
        if job_id in self._known:
            return self._known[job_id]
        path = self.directory / check_job_id(job_id)
        try:
            data = json.loads(await asyncio.to_thread(path.read_bytes))
        except FileNotFoundError:
            return None
        owner = (str(data["tenant"]), str(data["subject"]))
        self._known[job_id] = owner
        return owner

    async def set(self, job_id: str, tenant: str, subject: str) -> None:
        await asyncio.to_thread(self._write, check_job_id(job_id), tenant, subject)
        self._known[job_id] = (tenant, subject)

    def _write(self, job_id: str, tenant: str, subject: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{job_id}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(json.dumps({"tenant": tenant, "subject": subject}).encode())
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / job_id)
        if self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _string(value: str) -> str:
    """A line-protocol string field value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxOwners:
    """Owner records in InfluxDB, next to the store's tombstones (every replica sees them)."""

    def __init__(self, store: InfluxStore) -> None:
        self.store = store
        self.db = store.config.db_prefix + "_workmesh"
        self._created = False
        self._known: dict[str, tuple[str, str]] = {}

    async def _ensure(self) -> None:
        if not self._created:
            await self.store.query(f"CREATE DATABASE {ident(self.db)}")
            self._created = True

    async def get(self, job_id: str) -> tuple[str, str] | None:
        if job_id in self._known:
            return self._known[job_id]
        await self._ensure()
        result = await self.store.query(
            f"SELECT tenant, subject FROM owner WHERE job = {literal(check_job_id(job_id))}", self.db
        )
        for series in result[0].get("series") or ():
            for row in series.get("values") or ():
                owner = (str(row[1] or ""), str(row[2] or ""))
                self._known[job_id] = owner
                return owner
        return None

    async def set(self, job_id: str, tenant: str, subject: str) -> None:
        await self._ensure()
        line = f"owner,job={check_job_id(job_id)} tenant={_string(tenant)},subject={_string(subject)} 0\n"
        await self.store._post_lines(self.db, "s", line.encode())
        self._known[job_id] = (tenant, subject)


def owners_of(store: SeriesStore) -> Owners:
    """Where `store` keeps its owner records."""
    if isinstance(store, ParquetStore):
        return FileOwners(store.root / OWNERS, fsync=store.fsync)
    if isinstance(store, InfluxStore):
        return InfluxOwners(store)
    return MemoryOwners()
