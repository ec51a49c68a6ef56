"""Deleted jobs stay deleted: a tombstone per job, checked on the write path of every store.

Without it, a write that arrives after DeleteSeries (a worker still streaming a job the user
deleted) would create the job's series again. :class:`TombstonedStore` wraps any
:class:`SeriesStore`:

* ``delete(job)`` first records the tombstone durably (:class:`Tombstones`), then waits for the
  batches of that job this process is storing, then deletes the series. A batch that began
  before the tombstone is therefore removed with the rest; one that begins after it is refused.
* ``write`` refuses a deleted job (FAILED_PRECONDITION), and checks the tombstone again after
  storing: another results replica (same InfluxDB) may have deleted the job meanwhile, and then
  the batch is deleted again and refused — so what a deleter acknowledged stays deleted.
* ``read``/``list_series`` answer NOT_FOUND "job X was deleted" (a comparison names the deleted job).

``delete(job, restart=True)`` (a retried attempt starting over) removes the series without a
tombstone. Tombstones are kept for good: job ids are not reused, and one costs a few bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from workmesh.services.clients._model import Chunk, ReadQuery, SeriesData, SeriesSummary, check_job_id
from workmesh.services.core.errors import FailedPrecondition, NotFound
from workmesh.services.results.stores._protocol import SeriesStore, Tombstones

__all__ = ["FileTombstones", "Tombstones", "TombstonedStore", "deleted_error"]


class FileTombstones:
    """Tombstones as empty files ``<directory>/<job_id>`` (job ids are valid file names)."""

    def __init__(self, directory: str | os.PathLike, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self._known: set[str] = set()

    async def add(self, job_id: str) -> None:
        await asyncio.to_thread(self._add, check_job_id(job_id))
        self._known.add(job_id)

    def _add(self, job_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / job_id, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def contains(self, job_id: str) -> bool:
        if job_id in self._known:
            return True
        if (self.directory / job_id).exists():  # a stat: cheap enough for the event loop
            self._known.add(job_id)
            return True
        return False


def deleted_error(job_id: str) -> NotFound:
    """What reads and lists of a deleted job raise."""
    return NotFound(f"job {job_id!r} was deleted; its series are gone")


def _refused(job_id: str) -> FailedPrecondition:
    return FailedPrecondition(f"job {job_id!r} was deleted; its series are not accepted any more")


class TombstonedStore:
    """A SeriesStore whose deleted jobs stay deleted (see the module docstring)."""

    def __init__(self, store: SeriesStore, tombstones: Tombstones) -> None:
        self.store = store
        self.tombstones = tombstones
        self._writing: Counter[str] = Counter()
        self._idle = asyncio.Condition()

    @property
    def kind(self) -> str:
        return self.store.kind

    @property
    def host(self) -> str:
        return self.store.host

    @host.setter
    def host(self, value: str) -> None:
        self.store.host = value

    def database(self, job_id: str) -> str:
        return self.store.database(job_id)

    async def close(self) -> None:
        await self.store.close()

    async def write(self, batch: Sequence[Chunk]) -> None:
        if not batch:
            return
        job_id = batch[0].key.job_id
        if await self.tombstones.contains(job_id):
            raise _refused(job_id)
        self._writing[job_id] += 1
        try:
            await self.store.write(batch)
            if await self.tombstones.contains(job_id):  # deleted by another replica meanwhile
                with contextlib.suppress(NotFound):
                    await self.store.delete(job_id)
                raise _refused(job_id)
        finally:
            async with self._idle:
                self._writing[job_id] -= 1
                if not self._writing[job_id]:
                    del self._writing[job_id]
                self._idle.notify_all()

    async def read(self, queries: Sequence[ReadQuery]) -> list[SeriesData]:
        for query in queries:  # in the order named, so the error names the first deleted job
            if await self.tombstones.contains(query.job_id):
                raise deleted_error(query.job_id)
        return await self.store.read(queries)

    async def read_groups(self, queries: Sequence[ReadQuery]) -> AsyncIterator[list[SeriesData]]:
        """The read in blocks of whole groups (the store's ``read_groups``, or all of ``read`` at once)."""
        for query in queries:
            if await self.tombstones.contains(query.job_id):
                raise deleted_error(query.job_id)
        streamed = getattr(self.store, "read_groups", None)
        if streamed is None:
            yield await self.store.read(queries)
            return
        async for block in streamed(queries):
            yield block

    async def list_series(self, job_id: str) -> list[SeriesSummary]:
        if await self.tombstones.contains(job_id):
            raise deleted_error(job_id)
        return await self.store.list_series(job_id)

    async def delete(self, job_id: str, *, restart: bool = False) -> int:
        """Delete the job's series; for good (a tombstone first) unless `restart`.

        Raises:
            NotFound: the job has no series (with a tombstone recorded all the same).
            FailedPrecondition: `restart` of a job that was deleted.
        """
        if await self.tombstones.contains(job_id):
            if restart:
                raise _refused(job_id)
            raise deleted_error(job_id)
        if not restart:
            await self.tombstones.add(job_id)
            async with self._idle:  # batches that began before the tombstone: stored, then deleted
                await self._idle.wait_for(lambda: not self._writing[job_id])
        try:
            return await self.store.delete(job_id)
        finally:
            readers = getattr(self.store, "readers", None)
            if readers is not None and not restart:  # a job deleted for good has no readers
                await readers.drop_all(job_id)

    def __getattr__(self, name: str):
        # store-specific extras (e.g. ParquetStore.root, InfluxStore.query) stay reachable
        return getattr(self.store, name)
