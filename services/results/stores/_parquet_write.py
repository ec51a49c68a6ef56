"""The write path of the Parquet series store: a batch's part files and their commit to the catalogue.

See ``_parquet`` for the layout and the durability rules; :class:`PartWriter` is the base of
``ParquetStore`` that writes, commits and rolls back part files.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workmesh.services.clients._model import Chunk, SeriesKey, check_job_id
from workmesh.services.core.errors import InvalidArgument, ResourceExhausted
from workmesh.services.results.stores._catalog import Catalogs, _fsync, load_catalog
from workmesh.services.results.stores._parquet_read import key_of

_load = load_catalog


class PartWriter:
    """Writing part files and committing them to a job's catalogue (the base of ``ParquetStore``)."""

    root: Path
    row_group_rows: int
    compression_level: int
    fsync: bool
    catalogs: Catalogs
    _codec: Literal["none", "lz4", "zstd"]
    _float_encoding: str
    _locks: dict[str, threading.Lock]
    _locks_guard: threading.Lock

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
