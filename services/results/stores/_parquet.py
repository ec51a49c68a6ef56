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
import errno
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workmesh.services.clients._model import Chunk, ReadQuery, SeriesData, SeriesKey, SeriesSummary, check_job_id
from workmesh.services.core.errors import InvalidArgument, NotFound, ResourceExhausted
from workmesh.services.results.stores._catalog import Catalogs, _fsync, load_catalog
from workmesh.services.results.stores._parquet_read import JobPlan, key_of, read_job, stream_groups
from workmesh.services.results.stores._tombstones import FileTombstones

TOMBSTONES = "_deleted"  # job ids cannot start with "_": no clash with job directories
_CODECS: dict[str, Literal["none", "lz4", "zstd"]] = {"none": "none", "lz4": "lz4", "zstd": "zstd"}


class ParquetStore:
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

    # -- write -------------------------------------------------------------------------------

    async def write(self, batch: Sequence[Chunk]) -> None:
        cancelled = threading.Event()
        task = asyncio.ensure_future(asyncio.to_thread(self._write, batch, cancelled))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The thread cannot be interrupted: tell it not to commit, wait, and undo a commit
            # that happened before it saw the flag, so a cancelled batch leaves nothing.
            cancelled.set()
            with contextlib.suppress(Exception):
                committed = await task
                if committed:
                    await asyncio.to_thread(self._rollback, batch[0].key.job_id, committed)
            raise

    def _write(self, batch: Sequence[Chunk], cancelled: threading.Event) -> list[str]:
        if not batch:
            return []
        job_id = batch[0].key.job_id
        job_dir = self.root / check_job_id(job_id)
        by_measurement: dict[str, list[Chunk]] = {}
        for chunk in batch:
            if chunk.key.job_id != job_id:
                raise ValueError("a batch holds the chunks of one job")
            by_measurement.setdefault(chunk.key.measurement, []).append(chunk)
        staged: list[tuple[Path, str, list[Chunk]]] = []
        try:
            for measurement, chunks in by_measurement.items():
                chunks.sort(key=lambda c: (c.key, int(c.timestamps[0])))
                _check_batch_order(chunks)
                tmp = job_dir / measurement / f".tmp-{uuid.uuid4().hex}.parquet"
                tmp.parent.mkdir(parents=True, exist_ok=True)
                self._write_part(tmp, chunks)
                staged.append((tmp, measurement, chunks))
            with self._lock(job_id):
                if cancelled.is_set():
                    return []
                return self._commit(job_dir, staged)
        except OSError as exc:
            if disk_full(exc):
                raise ResourceExhausted(
                    f"the results store's disk is full ({exc}); nothing of this batch of "
                    f"job {job_id!r} was stored, retry when space is free"
                ) from exc
            raise
        finally:
            for tmp, _, _ in staged:
                tmp.unlink(missing_ok=True)

    def _write_part(self, path: Path, chunks: list[Chunk]) -> None:
        keys: list[SeriesKey] = []
        index: list[int] = []
        for chunk in chunks:
            if not keys or keys[-1] != chunk.key:
                keys.append(chunk.key)
            index.append(len(keys) - 1)
        names = list(dict.fromkeys(name for c in chunks for name in c.fields))
        lengths = np.fromiter((len(c) for c in chunks), np.int64, len(chunks))
        # Each field column is written from the chunks' own arrays (views of the received
        # messages): uncompressed, the Parquet writer is as fast on these Arrow chunks as on one
        # contiguous array, and concatenating them first cost a sixth of the service's ingest CPU
        # (measured). Compressed, a page per chunk compresses about three times slower: join them.
        joined = self._codec != "none"
        fields = {
            name: _column([c.fields[name] if name in c.fields else np.full(len(c), np.nan) for c in chunks], joined)
            for name in names
        }
        self.write_columns(
            path,
            np.repeat(np.asarray(index, np.int32), lengths),
            np.concatenate([c.timestamps for c in chunks]),
            fields,
        )

    def write_columns(
        self, path: Path, series: np.ndarray, times: np.ndarray, fields: Mapping[str, np.ndarray | pa.ChunkedArray]
    ) -> None:
        """Write one part file (rows sorted by series, then time) and fsync it."""
        names = list(fields)
        columns = {
            "_series": pa.array(series),
            "_time": pa.array(times),
            **{name: _arrow(values) for name, values in fields.items()},
        }
        # Not nullable (a missing value is NaN, never null): no definition levels to write, and
        # a field column reads about 40% faster (measured on the benchmark data).
        schema = pa.schema([pa.field(name, col.type, nullable=False) for name, col in columns.items()])
        table = pa.table(columns, schema=schema)
        pq.write_table(
            table,
            path,
            row_group_size=self.row_group_rows,
            compression=self._codec,
            compression_level=self.compression_level if self._codec == "zstd" else None,
            # pyarrow-stubs declare a bool; pyarrow also takes the columns to dictionary-encode.
            use_dictionary=["_series"],  # type: ignore[arg-type]
            column_encoding={"_time": "DELTA_BINARY_PACKED", **{name: self._float_encoding for name in names}},
            write_statistics=["_series", "_time"],
        )
        if self.fsync:
            _fsync(path)

    def _commit(self, job_dir: Path, staged: list[tuple[Path, str, list[Chunk]]]) -> list[str]:
        try:
            return self._commit_once(job_dir, staged)
        except BaseException:
            self.catalogs.forget(job_dir)  # its catalogue in memory may hold part of this commit
            raise

    def _commit_once(self, job_dir: Path, staged: list[tuple[Path, str, list[Chunk]]]) -> list[str]:
        job = self.catalogs.get(job_dir)
        catalog: dict[str, Any] = job.catalog if job else {"version": 2, "series": [], "parts": [], "next_part": 1}
        if job is None:
            ids: dict[SeriesKey, int] = {}
            ends: dict[int, int] = {}
        else:
            if not job.indexed:
                job.ids = {key_of(s, job_dir.name): i for i, s in enumerate(catalog["series"])}
                for part in catalog["parts"]:
                    for sid, _count, _start, end, _ in part["series"]:
                        job.ends[sid] = max(end, job.ends.get(sid, end))
                job.indexed = True
            ids, ends = job.ids, job.ends
        record: dict = {"series": [], "fields": [], "parts": []}
        committed: list[str] = []
        parts = []
        for tmp, measurement, chunks in staged:
            entries: list[list[int]] = []
            for chunk in chunks:
                sid = ids.get(chunk.key)
                if sid is None:
                    sid = ids[chunk.key] = len(catalog["series"])
                    new = {"measurement": measurement, "tags": dict(chunk.key.tags), "fields": {}}
                    catalog["series"].append(new)
                    record["series"].append(new)
                entry = catalog["series"][sid]
                for name in chunk.fields:
                    unit = chunk.units.get(name) or entry["fields"].get(name, "")
                    if entry["fields"].get(name) != unit:
                        entry["fields"][name] = unit
                        record["fields"].append([sid, name, unit])
                first, last = int(chunk.timestamps[0]), int(chunk.timestamps[-1])
                if sid in ends and first <= ends[sid]:
                    raise InvalidArgument(
                        "chunk.timestamps",
                        f"series {_describe(chunk.key)}: timestamp {first} "
                        f"is not after the last one stored ({ends[sid]})",
                    )
                step = _step(chunk.timestamps)
                if entries and entries[-1][0] == sid:
                    entry = entries[-1]
                    if not (entry[4] and first == entry[3] + entry[4] and (step == entry[4] or len(chunk) == 1)):
                        entry[4] = 0  # the part's run of this series is not regular
                    entry[1] += len(chunk)
                    entry[3] = last
                else:
                    entries.append([sid, len(chunk), first, last, step])
            for sid, _count, _first, last, _ in entries:
                ends[sid] = last
            name = f"{measurement}/part-{catalog['next_part']:06d}-{uuid.uuid4().hex[:8]}.parquet"
            catalog["next_part"] += 1
            parts.append((tmp, job_dir / name))
            part = {"file": name, "measurement": measurement, "series": entries}
            catalog["parts"].append(part)
            record["parts"].append(part)
            committed.append(name)
        record["next_part"] = catalog["next_part"]
        # a new series' entry holds its fields: the record's own field list names known series only
        known = len(catalog["series"]) - len(record["series"])
        record["fields"] = [f for f in record["fields"] if f[0] < known]
        try:
            for tmp, final in parts:
                os.replace(tmp, final)
            if self.fsync:
                for directory in {final.parent for _, final in parts}:
                    _fsync(directory)
            self.catalogs.append(job_dir, job, catalog, record)
        except BaseException:
            for _, final in parts:  # not in the catalogue, so never read: free the space
                final.unlink(missing_ok=True)
            raise
        return committed

    def _rollback(self, job_id: str, files: list[str]) -> None:
        job_dir = self.root / job_id
        with self._lock(job_id):
            catalog = _load(job_dir)
            if catalog is None:
                return
            catalog["parts"] = [p for p in catalog["parts"] if p["file"] not in files]
            self._save(job_dir, catalog)
            for name in files:
                (job_dir / name).unlink(missing_ok=True)

    def _save(self, job_dir: Path, catalog: dict) -> None:
        """Replace the job's catalogue as a whole (compaction, a rollback; see ``_catalog``)."""
        self.catalogs.save(job_dir, catalog)

    def _lock(self, job_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(job_id, threading.Lock())

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


def _column(arrays: list[np.ndarray], joined: bool) -> np.ndarray | pa.ChunkedArray:
    """One field column of a part: the arrays joined, or as Arrow chunks over them (no copy)."""
    if joined:
        return np.concatenate(arrays)
    return pa.chunked_array([pa.array(a) for a in arrays], type=pa.float64())


def _arrow(values: np.ndarray | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.array(values)


def _describe(key: SeriesKey) -> str:
    return ",".join([key.measurement, *(f"{k}={v}" for k, v in key.tags)])


def _step(ts: np.ndarray) -> int:
    """The fixed step of regular timestamps, or 0."""
    if len(ts) < 2:
        return 0
    step = int(ts[1] - ts[0])
    return step if np.array_equal(np.diff(ts), np.full(len(ts) - 1, step)) else 0


def _check_batch_order(chunks: list[Chunk]) -> None:
    """Chunks of one series in a batch must not overlap (they are sorted by key and first time)."""
    for prev, chunk in zip(chunks, chunks[1:], strict=False):
        if prev.key == chunk.key and chunk.timestamps[0] <= prev.timestamps[-1]:
            raise InvalidArgument(
                "chunk.timestamps",
                f"series {_describe(chunk.key)}: timestamp "
                f"{int(chunk.timestamps[0])} is not after {int(prev.timestamps[-1])} of an "
                "earlier chunk",
            )


def disk_full(exc: OSError) -> bool:
    """Whether an OSError (also pyarrow's, which carry no errno) says the disk or quota is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return os.strerror(errno.ENOSPC) in text or os.strerror(errno.EDQUOT) in text
