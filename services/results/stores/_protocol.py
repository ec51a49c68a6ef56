"""The storage interface of the results service, and helpers every store shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from workmesh.services.clients._model import Chunk, ReadQuery, SeriesData, SeriesSummary

AGGREGATES = ("mean", "min", "max", "last")


@runtime_checkable
class Tombstones(Protocol):
    """The durable set of deleted jobs of a store."""

    async def add(self, job_id: str) -> None:
        """Record that `job_id` is deleted; durable when this returns."""

    async def contains(self, job_id: str) -> bool:
        """Whether `job_id` was deleted (by this process or another one on the same data)."""


@runtime_checkable
class SeriesStore(Protocol):
    """Where series live. Both adapters (Parquet, InfluxDB) pass the same test suite.

    Attributes:
        kind: ``"parquet"`` or ``"influxdb"`` — the ``store`` of the SeriesRefs.
        host: where a front end finds the data (the results service or the InfluxDB URL).
        tombstones: the durable record of deleted jobs, next to the data (see ``_tombstones``);
            the results service wraps every store in a ``TombstonedStore`` that uses it.
    """

    kind: str
    host: str

    @property
    def tombstones(self) -> Tombstones:
        """Read only: each store has its own kind of record (files, an InfluxDB database)."""

    async def write(self, batch: Sequence[Chunk]) -> None:
        """Store a batch durably, all of it or nothing.

        When this returns, the batch is durable. When it raises or is cancelled, nothing of
        the batch remains visible. Timestamps in a series must be later than the ones already
        stored in it (Parquet checks it across calls; InfluxDB overwrites equal timestamps).

        Raises:
            InvalidArgument: a series would get timestamps out of order.
            Unavailable: the backend cannot be reached.
        """

    async def read(self, queries: Sequence[ReadQuery]) -> list[SeriesData]:
        """The selected series of every query's job, sorted by key; NotFound for an unknown job."""

    async def list_series(self, job_id: str) -> list[SeriesSummary]:
        """The series of one job, sorted by key; NotFound for an unknown job."""

    async def delete(self, job_id: str) -> int:
        """Remove every series of a job and return how many there were; NotFound if none."""

    def database(self, job_id: str) -> str:
        """The ``database`` of a job's SeriesRefs (the InfluxDB database or the job directory)."""

    async def close(self) -> None:
        """Release connections and threads."""


def time_slice(ts: np.ndarray, start: int | None, end: int | None) -> slice:
    """The index range of sorted `ts` within [start, end)."""
    lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, "left"))
    return slice(lo, max(lo, hi))


def downsample(
    ts: np.ndarray, fields: dict[str, np.ndarray], window: int, aggregate: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Aggregate sorted ns timestamps into windows that start at multiples of `window` since the epoch.

    Windows without points are left out (InfluxQL ``fill(none)``); NaN values are ignored, and a
    window where a field has only NaN gives NaN.
    """
    if len(ts) == 0:
        return ts, fields
    buckets = ts // window
    starts = np.concatenate(([0], np.flatnonzero(buckets[1:] != buckets[:-1]) + 1))
    out_ts = buckets[starts] * window
    out: dict[str, np.ndarray] = {}
    for name, values in fields.items():
        valid = ~np.isnan(values)
        if aggregate == "mean":
            sums = np.add.reduceat(np.where(valid, values, 0.0), starts)
            counts = np.add.reduceat(valid.astype(np.int64), starts)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        elif aggregate == "min":
            out[name] = np.fmin.reduceat(values, starts)
        elif aggregate == "max":
            out[name] = np.fmax.reduceat(values, starts)
        elif aggregate == "last":
            idx = np.maximum.reduceat(np.where(valid, np.arange(len(values)), -1), starts)
            out[name] = np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)
        else:
            raise ValueError(f"unknown aggregate {aggregate!r}")
    return out_ts, out
