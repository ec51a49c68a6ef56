"""The Parquet series store: one directory per job, Parquet part files, a JSON catalogue.

Layout (under the data directory)::

    <job_id>/_catalog.json                       series keys, units, and the committed parts with,
                                                 per series: count, first, last, step (0: irregular)
    <job_id>/_catalog.<id>.log                   the commits since that snapshot, one JSON line each
                                                 (see ``_catalog``)
    <job_id>/<measurement>/part-<n>-<id>.parquet  one per committed batch and measurement

A part file is "long": columns ``_series`` (int32, index into the part's series list in the
catalogue), ``_time`` (int64 ns; field names start with a letter, so they never clash) and one
float64 column per field, rows sorted by series, then time. Why this layout:

* Reading one field for all components reads at most three column chunks per row group
  (``_series``, ``_time``, the field) and nothing else — the other fields are never touched.
  ``_series`` is dictionary/RLE encoded and ``_time`` delta-encoded, so both cost little; floats
  are PLAIN when uncompressed (the default), byte-stream-split when zstd or lz4 follow (smooth
  physical series compress well after it). Parts written before with byte-stream-split read as
  they are: the encoding is per column chunk, so no migration is needed.
* A series is one contiguous run in each part, found by a binary search on ``_series`` — no
  sort at read time — and row-group statistics on ``_series`` skip row groups when a tag filter
  selects few series. When a read wants every series of a part and all have regular timestamps
  (the catalogue keeps the step), the runs follow from the counts and the times from start and
  step, so only the field columns are read at all.
* A wide layout (one column per field and tag set) would need thousands of columns per file,
  whose metadata alone costs more than the data for short series.

Durability: a batch is written to a temporary file, fsynced and renamed; it becomes visible when
the catalogue lists it: its line is appended to the catalogue's log and fsynced (or, now and
then, a whole new snapshot replaces the old one atomically). A part that is not in the catalogue
is never read, so a crash or cancellation leaves nothing half-written visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

from workmesh.services.clients._model import ReadQuery, SeriesData, SeriesSummary, check_job_id
from workmesh.services.core.errors import NotFound
from workmesh.services.results.stores._catalog import Catalogs, load_catalog
from workmesh.services.results.stores._parquet_read import JobPlan, key_of, read_job, stream_groups
from workmesh.services.results.stores._parquet_write import PartWriter
from workmesh.services.results.stores._tombstones import FileTombstones

TOMBSTONES = "_deleted"  # job ids cannot start with "_": no clash with job directories
_CODECS: dict[str, Literal["none", "lz4", "zstd"]] = {"none": "none", "lz4": "lz4", "zstd": "zstd"}


class ParquetStore(PartWriter):
    """Series in Parquet files under `root` (see the module docstring for the layout).

    Args:
        root: the data directory; created when missing.
        host: the address put into SeriesRefs (the results service's address).
        row_group_rows: rows per row group (~1M keeps column chunks large for single-field reads).
        compression: the codec, ``"none"``, ``"lz4"`` or ``"zstd"``. After byte-stream-split,
            zstd saves about 22% of the bytes of the benchmark data but makes writing a part
            about three times and reading a field five times as costly (measured), and writing
            is what limits ingest: hence none by default.
        compression_level: zstd level. Negative levels are zstd's fast mode: after byte-stream-split
            -1 writes about 1.5x faster than 1 for 4% more bytes (measured on the benchmark data).
        fsync: flush files to disk before acknowledging (turn off only for throwaway data).
    """

    kind = "parquet"

    def __init__(
        self,
        root: str | os.PathLike,
        host: str = "",
        *,
        row_group_rows: int = 1 << 20,
        compression: str = "none",
        compression_level: int = -1,
        fsync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.row_group_rows = row_group_rows
        if compression not in _CODECS:
            raise ValueError(f"compression: must be one of {', '.join(_CODECS)}, got {compression!r}")
        self.compression = compression
        self._codec = _CODECS[compression]
        # Byte-stream-split only helps a codec; uncompressed, PLAIN writes about 20% and reads a
        # field about 15% faster (measured). Readers take either: parts of both kinds coexist.
        self._float_encoding = "PLAIN" if compression == "none" else "BYTE_STREAM_SPLIT"
        self.compression_level = compression_level
        self.fsync = fsync
        self._locks: dict[str, threading.Lock] = {}
        self.catalogs = Catalogs(fsync=fsync)
        self.tombstones = FileTombstones(self.root / TOMBSTONES, fsync=fsync)
        self._locks_guard = threading.Lock()
        self._readers: Counter[str] = Counter()  # streamed reads running, per job
        self._graveyard: dict[str, list[Path]] = {}  # parts replaced while a streamed read ran

    def database(self, job_id: str) -> str:
        return job_id

    async def close(self) -> None:
        return None

    # -- read, list, delete ------------------------------------------------------------------

    async def read(self, queries: Sequence[ReadQuery]) -> list[SeriesData]:
        out: list[SeriesData] = []
        for query in queries:
            out.extend(await asyncio.to_thread(self._read, query))
        return out

    def _read(self, query: ReadQuery) -> list[SeriesData]:
        for attempt in range(3):
            try:
                return self._read_once(query)
            except FileNotFoundError:
                # compaction replaced parts after this read loaded the catalogue: the new
                # catalogue lists the merged part, so read again (a job deleted meanwhile
                # then answers NotFound)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_once(self, query: ReadQuery) -> list[SeriesData]:
        return read_job(self._plan(query))

    def _plan(self, query: ReadQuery, axes: dict | None = None) -> JobPlan:
        return JobPlan.of(self.root / query.job_id, self._catalog(query.job_id), query, axes)

    async def read_groups(
        self, queries: Sequence[ReadQuery], block_values: int = 4_000_000
    ) -> AsyncIterator[list[SeriesData]]:
        """The series of the queries' jobs in blocks of whole groups (see ``_parquet_read``).

        Raises NotFound for a job without series before yielding anything. While the read runs,
        a compaction of its jobs leaves the replaced part files in place (they are removed when
        the last read of the job ends), so the catalogues loaded here stay readable. The next
        block is read (in a thread, Parquet decoding releases the GIL) while the caller sends
        this one: two blocks are held at most.
        """
        jobs = [q.job_id for q in queries]
        self._hold(jobs, +1)
        pending: asyncio.Future | None = None
        try:
            axes: dict = {}  # regular times shared by the series of all the jobs read
            plans = await asyncio.to_thread(lambda: [self._plan(q, axes) for q in queries])
            blocks = stream_groups(plans, block_values)
            pending = asyncio.ensure_future(asyncio.to_thread(next, blocks, None))
            while (block := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(next, blocks, None))
                yield block
            pending = None
        except FileNotFoundError as exc:  # the job was deleted while it was read
            raise NotFound(f"a job of this read was deleted while it was read ({exc.filename})") from exc
        finally:
            if pending is not None:  # the caller stopped early: let the thread finish its block first
                with contextlib.suppress(BaseException):
                    await pending
            self._hold(jobs, -1)

    def _hold(self, jobs: list[str], change: int) -> None:
        with self._locks_guard:
            for job_id in jobs:
                self._readers[job_id] += change
                if self._readers[job_id] <= 0:
                    del self._readers[job_id]
                    for path in self._graveyard.pop(job_id, []):
                        path.unlink(missing_ok=True)

    def discard(self, job_id: str, paths: Sequence[Path]) -> None:
        """Remove part files no catalogue lists any more — once no streamed read of the job runs."""
        with self._locks_guard:
            if self._readers[job_id] > 0:
                self._graveyard.setdefault(job_id, []).extend(paths)
                return
        for path in paths:
            path.unlink(missing_ok=True)

    async def list_series(self, job_id: str) -> list[SeriesSummary]:
        return await asyncio.to_thread(self._list, job_id)

    def _list(self, job_id: str) -> list[SeriesSummary]:
        catalog = self._catalog(job_id)
        stats: dict[int, list[int]] = {}
        for part in catalog["parts"]:
            for sid, count, start, end, _ in part["series"]:
                s = stats.setdefault(sid, [0, start, end])
                s[0] += count
                s[1] = min(s[1], start)
                s[2] = max(s[2], end)
        out = []
        for sid, (count, start, end) in stats.items():
            entry = catalog["series"][sid]
            units = {n: u for n, u in entry["fields"].items() if u}
            out.append(SeriesSummary(key_of(entry, job_id), tuple(entry["fields"]), count, start, end, units))
        out.sort(key=lambda s: s.key)
        return out

    async def delete(self, job_id: str) -> int:
        return await asyncio.to_thread(self._delete, job_id)

    def _delete(self, job_id: str) -> int:
        with self._lock(job_id):
            count = len(self._list(job_id))
            # Rename first: readers see the job gone at once; the files go after.
            trash = self.root / f".deleted-{job_id}-{uuid.uuid4().hex[:8]}"
            os.replace(self.root / job_id, trash)
            self.catalogs.forget(self.root / job_id)
        shutil.rmtree(trash, ignore_errors=True)
        return count

    def _catalog(self, job_id: str) -> dict:
        catalog = _load(self.root / check_job_id(job_id))
        if catalog is None or not catalog["parts"]:
            raise NotFound(f"job {job_id!r} has no series")
        return catalog


_load = load_catalog
