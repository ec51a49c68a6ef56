"""A Parquet job's catalogue: a snapshot plus an append-only log, so a commit costs its own size.

Rewriting (and fsyncing) the whole catalogue at every commit made a job of n flushes cost O(n²)
— 10,000 small batches never finished. Now:

* ``_catalog.json`` is a snapshot: ``series``, ``parts``, ``next_part`` and ``log``, the name of
  the job's log file.
* Each commit appends one JSON line to that log — the series it adds, the fields and units it
  adds to known series, the parts it adds — and fsyncs the log; only then is the batch
  acknowledged. A line is written with one ``pwrite`` ending in ``\\n``, so a reader or a crash
  sees a line whole or not at all: a last line without its newline is ignored (and cut off by
  the next append), and it was never acknowledged.
* When the log has grown past the snapshot (so the copying stays linear in all), and whenever
  parts are replaced (compaction, a rolled back batch), the whole catalogue is written as a new
  snapshot naming a new, empty log (write, fsync, rename, fsync directory); the old log goes
  after. A reader that loaded the old snapshot and finds its log gone loads again.

A store keeps the catalogue of the jobs it writes in memory (series ids, each series' last
timestamp), checked against the files' size and identity before each commit, so a commit reads
nothing back.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CATALOG", "Catalogs", "JobCatalog", "load_catalog"]

CATALOG = "_catalog.json"  # measurements cannot start with "_": no clash with their directories


def _apply(catalog: dict, record: dict) -> None:
    catalog["series"].extend(record.get("series", ()))
    for sid, name, unit in record.get("fields", ()):
        fields = catalog["series"][sid]["fields"]
        fields[name] = unit or fields.get(name, "")
    catalog["parts"].extend(record.get("parts", ()))
    catalog["next_part"] = record.get("next_part", catalog["next_part"])


def _replay(catalog: dict, data: bytes) -> int:
    """Apply the complete lines of a log; returns the offset after the last one."""
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        _apply(catalog, json.loads(line))
    return end


def _read(job_dir: Path) -> tuple[dict, os.stat_result, int] | None:
    for _attempt in range(5):
        try:
            snapshot = job_dir / CATALOG
            with open(snapshot, "rb") as f:
                stat = os.fstat(f.fileno())
                catalog = json.loads(f.read())
        except FileNotFoundError:
            return None
        offset = 0
        if catalog.get("log"):
            try:
                data = (job_dir / catalog["log"]).read_bytes()
            except FileNotFoundError:
                continue  # a new snapshot replaced this one meanwhile: load that
            offset = _replay(catalog, data)
        return catalog, stat, offset
    raise FileNotFoundError(f"the catalogue of {job_dir} kept changing while it was read")


def load_catalog(job_dir: Path) -> dict | None:
    """The job's catalogue (snapshot and log), or None when the job has none."""
    found = _read(job_dir)
    return found[0] if found else None


@dataclass
class JobCatalog:
    """A job's catalogue as its writer keeps it, with indexes a commit needs."""

    catalog: dict
    stat: os.stat_result
    offset: int  # of the log's end (after the last complete line)
    ids: dict = field(default_factory=dict)  # SeriesKey -> series id, filled by the store
    ends: dict[int, int] = field(default_factory=dict)  # series id -> last timestamp stored
    indexed: bool = False


class Catalogs:
    """The catalogues of the jobs a store writes (call every method under the job's lock)."""

    def __init__(self, *, fsync: bool) -> None:
        self.fsync = fsync
        self._jobs: dict[Path, JobCatalog] = {}

    def get(self, job_dir: Path) -> JobCatalog | None:
        """The job's catalogue, from memory when the files are still the ones it was read from."""
        known = self._jobs.get(job_dir)
        if known is not None:
            try:
                stat = os.stat(job_dir / CATALOG)
                log = known.catalog.get("log")
                size = os.stat(job_dir / log).st_size if log else 0
            except FileNotFoundError:
                stat, size = None, -1
            if (
                stat is not None
                and (stat.st_ino, stat.st_mtime_ns) == (known.stat.st_ino, known.stat.st_mtime_ns)
                and size == known.offset
            ):
                return known
            del self._jobs[job_dir]
        found = _read(job_dir)
        if found is None:
            return None
        self._jobs[job_dir] = JobCatalog(*found)
        return self._jobs[job_dir]

    def forget(self, job_dir: Path) -> None:
        """Drop what is kept of a job (after an error, or when it is deleted)."""
        self._jobs.pop(job_dir, None)

    def append(self, job_dir: Path, job: JobCatalog | None, catalog: dict, record: dict) -> None:
        """Make a commit durable: `record` appended to the log, or a new snapshot of `catalog`.

        `catalog` already holds the record (the caller applied it). On an error nothing of the
        record is visible to a reader and the kept catalogue is dropped.
        """
        try:
            if job is None or not catalog.get("log") or job.offset > max(job.stat.st_size, 1 << 16):
                self.save(job_dir, catalog)
                return
            line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
            fd = os.open(job_dir / catalog["log"], os.O_WRONLY)
            try:
                os.ftruncate(fd, job.offset)  # a torn line of a crashed or failed append
                written = os.pwrite(fd, line, job.offset)
                if written != len(line):
                    raise OSError(f"short write to the catalogue log of {job_dir}")
                if self.fsync:
                    os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, job.offset)
                raise
            finally:
                os.close(fd)
            job.offset += len(line)
        except BaseException:
            self.forget(job_dir)
            raise

    def save(self, job_dir: Path, catalog: dict) -> None:
        """Write `catalog` as a new snapshot with a new, empty log (see the module docstring)."""
        old = catalog.get("log")
        log = f"_catalog.{uuid.uuid4().hex[:12]}.log"
        catalog = {**catalog, "version": 2, "log": log}
        self.forget(job_dir)
        tmp = job_dir / f".{CATALOG}.{uuid.uuid4().hex}"
        try:
            fd = os.open(job_dir / log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            tmp.write_bytes(json.dumps(catalog, separators=(",", ":")).encode())
            if self.fsync:
                _fsync(tmp)
            os.replace(tmp, job_dir / CATALOG)
        except BaseException:
            tmp.unlink(missing_ok=True)
            (job_dir / log).unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync(job_dir)
        if old and old != log:
            (job_dir / old).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
