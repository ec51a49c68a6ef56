"""Background compaction of a Parquet job's small parts, once its writes are done.

Every stored batch is one part file per measurement, so a job written in many small batches
(a worker flushing often) leaves many small files, and a read opens each of them. After the
last WriteSeries call of a job ends and none has begun for ``delay`` seconds, the
:class:`Compactor` merges runs of consecutive small parts of each measurement into parts of up
to ``target_rows`` rows (one part per run), so memory stays bounded by the run and big parts are
never rewritten.

Atomic for readers: the merged part is written to a temporary file, fsynced and renamed, and
becomes visible when the catalogue that lists it *instead of* the old parts replaces the old
catalogue (under the job's lock, the same one writes and deletes take). Only then are the old
files removed; a reader that loaded the old catalogue and finds a part gone reads again with the
new one (:meth:`ParquetStore._read`). A reader sees the old parts or the new one, never neither.

A full disk (or any error) while compacting leaves the old parts and the old catalogue as they
were; a full disk is retried after ``retry`` seconds, doubling up to ``max_retry``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import structlog

from workmesh.services.results.stores._catalog import _fsync
from workmesh.services.results.stores._parquet import ParquetStore, _load
from workmesh.services.results.stores._parquet_write import disk_full

__all__ = ["CompactionResult", "Compactor", "compact_job"]

log = structlog.get_logger("workmesh.results.compaction")


@dataclass(frozen=True)
class CompactionResult:
    """Parts of a job before and after one compaction."""

    job_id: str
    parts_before: int
    parts_after: int


class Compactor:
    """Schedules :func:`compact_job` for Parquet jobs whose writes are done (see the module docstring).

    The results servicer calls :meth:`begin` when a WriteSeries call of a job starts and
    :meth:`end` when it ends (however it ends).

    Args:
        store: the Parquet store.
        delay: seconds without a write call of the job before compacting.
        target_rows: rows of a merged part (and: a part of at least half of it is left alone).
        retry, max_retry: seconds before a compaction that hit a full disk is tried again.
    """

    def __init__(
        self,
        store: ParquetStore,
        *,
        delay: float = 2.0,
        target_rows: int = 1 << 20,
        retry: float = 30.0,
        max_retry: float = 600.0,
    ) -> None:
        self.store = store
        self.delay = delay
        self.target_rows = target_rows
        self.retry = retry
        self.max_retry = max_retry
        self._active: Counter[str] = Counter()
        self._scheduled: dict[str, asyncio.Task] = {}
        self.results: list[CompactionResult] = []  # the last few, for tests and the benchmark
        self.postponed = 0  # attempts that found the disk full

    def begin(self, job_id: str) -> None:
        """A write call of the job started: postpone its compaction."""
        self._active[job_id] += 1
        task = self._scheduled.pop(job_id, None)
        if task is not None:
            task.cancel()  # a compaction already in its thread finishes; its commit is safe anyway

    def end(self, job_id: str) -> None:
        """A write call of the job ended: compact after `delay` unless another one starts."""
        self._active[job_id] -= 1
        if self._active[job_id] > 0:
            return
        del self._active[job_id]
        if job_id not in self._scheduled:
            self._scheduled[job_id] = asyncio.get_running_loop().create_task(
                self._later(job_id), name=f"compact-{job_id}"
            )

    async def _later(self, job_id: str) -> None:
        wait = self.delay
        try:
            while True:
                await asyncio.sleep(wait)
                try:
                    result = await asyncio.to_thread(compact_job, self.store, job_id, self.target_rows)
                except OSError as exc:
                    if not disk_full(exc):
                        raise
                    self.postponed += 1
                    wait = self.retry if wait == self.delay else min(wait * 2, self.max_retry)
                    log.warning(
                        "compaction postponed: the disk is full; the old parts stay readable",
                        job_id=job_id,
                        retry_in=wait,
                        error=str(exc),
                    )
                    continue
                if result is not None and result.parts_after < result.parts_before:
                    self.results = [*self.results[-99:], result]
                    log.info(
                        "compacted", job_id=job_id, parts_before=result.parts_before, parts_after=result.parts_after
                    )
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the job stays readable as it was; say why
            log.error("compaction failed; the job's parts are left as they were", job_id=job_id, error=str(exc))
        finally:
            if self._scheduled.get(job_id) is asyncio.current_task():
                del self._scheduled[job_id]

    async def wait_idle(self) -> None:
        """Wait until no compaction is scheduled or running (tests, the benchmark)."""
        while self._scheduled:
            await asyncio.gather(*self._scheduled.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel scheduled compactions (one in its thread finishes first; nothing is left half-done)."""
        tasks = list(self._scheduled.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _runs(parts: list[dict], target_rows: int) -> list[list[int]]:
    """Indexes (into `parts`) of runs of consecutive small parts of one measurement worth merging."""
    by_measurement: dict[str, list[int]] = {}
    for i, part in enumerate(parts):
        by_measurement.setdefault(part["measurement"], []).append(i)
    runs: list[list[int]] = []
    for indexes in by_measurement.values():
        run: list[int] = []
        rows = 0
        for i in indexes:
            size = sum(entry[1] for entry in parts[i]["series"])
            if size >= target_rows // 2 or rows + size > target_rows:
                if len(run) > 1:
                    runs.append(run)
                run, rows = ([], 0) if size >= target_rows // 2 else ([i], size)
                continue
            run.append(i)
            rows += size
        if len(run) > 1:
            runs.append(run)
    return runs


def compact_job(store: ParquetStore, job_id: str, target_rows: int = 1 << 20) -> CompactionResult | None:
    """Merge runs of small parts of a job (blocking; see the module docstring). None: no such job.

    Raises:
        OSError: writing a merged part failed (a full disk among them); nothing changed.
    """
    job_dir = store.root / job_id
    catalog = _load(job_dir)
    if catalog is None:
        return None
    before = len(catalog["parts"])
    for run in _runs(catalog["parts"], target_rows):
        _merge(store, job_id, [catalog["parts"][i] for i in run])
    after = _load(job_dir)
    return CompactionResult(job_id, before, len(after["parts"]) if after else 0)


def _merge(store: ParquetStore, job_id: str, parts: list[dict]) -> None:
    job_dir = store.root / job_id
    measurement = parts[0]["measurement"]
    sids, times, columns, lengths = [], [], [], []
    for part in parts:
        table = pq.read_table(job_dir / part["file"])
        ids = np.array([entry[0] for entry in part["series"]], dtype=np.int64)
        sids.append(ids[table.column("_series").to_numpy()])
        times.append(table.column("_time").to_numpy())
        columns.append({n: table.column(n).to_numpy() for n in table.column_names if not n.startswith("_")})
        lengths.append(table.num_rows)
    names = list(dict.fromkeys(n for c in columns for n in c))
    # series ids in part order are time order: a stable sort by series keeps each series sorted
    all_sids = np.concatenate(sids)
    order = np.argsort(all_sids, kind="stable")
    fields = {
        n: np.concatenate([c[n] if n in c else np.full(k, np.nan) for c, k in zip(columns, lengths, strict=True)])[
            order
        ]
        for n in names
    }
    sorted_sids = all_sids[order]
    unique, local = np.unique(sorted_sids, return_inverse=True)
    entries = _entries(parts, unique)
    tmp = job_dir / measurement / f".tmp-{uuid.uuid4().hex}.parquet"
    try:
        store.write_columns(tmp, local.astype(np.int32), np.concatenate(times)[order], fields)
        with store._lock(job_id):
            catalog = _load(job_dir)
            files = [p["file"] for p in catalog["parts"]] if catalog else []
            old = {p["file"] for p in parts}
            if catalog is None or not old <= set(files):
                return  # the job was deleted or restarted meanwhile: nothing to replace
            name = f"{measurement}/part-{catalog['next_part']:06d}-{uuid.uuid4().hex[:8]}.parquet"
            catalog["next_part"] += 1
            kept = [p for p in catalog["parts"] if p["file"] not in old]
            position = sum(1 for f in files[: files.index(parts[0]["file"])] if f not in old)
            kept.insert(position, {"file": name, "measurement": measurement, "series": entries})
            catalog["parts"] = kept
            final = job_dir / name
            os.replace(tmp, final)
            try:
                if store.fsync:
                    _fsync(final.parent)
                store._save(job_dir, catalog)
            except BaseException:
                final.unlink(missing_ok=True)  # the old catalogue, listing the old parts, stays
                raise
        store.discard(job_id, [job_dir / path for path in old])
    finally:
        tmp.unlink(missing_ok=True)


def _entries(parts: list[dict], unique: np.ndarray) -> list[list[int]]:
    """Catalogue entries [local id, count, first, last, step] of the merged part."""
    merged: dict[int, list[int]] = {}
    for part in parts:
        for sid, count, first, last, step in part["series"]:
            entry = merged.get(sid)
            if entry is None:
                merged[sid] = [sid, count, first, last, step]
                continue
            regular = entry[4] and step == entry[4] and first == entry[3] + step
            entry[1] += count
            entry[3] = last
            if not regular:
                entry[4] = 0
    return [[local, *merged[int(sid)][1:]] for local, sid in enumerate(unique)]
