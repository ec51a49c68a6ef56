"""Reading Parquet jobs: the wanted series of one part, one job's read, and the streamed comparison.

A comparison read (one field of N variations) must not hold every job's data at once: N jobs of
one field are N x 70 MB for the benchmark's job, and the servicer needs the series of one key
(measurement and tags) from every job together, to put them on one time axis. :func:`stream_groups`
walks the keys of all jobs in sorted order and loads a part file when the first series it holds
is due; a part's columns are dropped when its last wanted series is sent. Parts are written in
key order, so only one or two parts per job are loaded at any time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from workmesh.services.clients._model import ReadQuery, SeriesData, SeriesKey
from workmesh.services.results.stores._protocol import downsample, time_slice

__all__ = ["JobPlan", "part_pieces", "read_job", "series_of", "stream_groups"]

Piece = tuple[np.ndarray, dict[str, np.ndarray], int]  # times, fields, step (0: not known regular)
Axes = dict[tuple[int, int, int], np.ndarray]


def regular_axis(axes: Axes, start: int, step: int, count: int) -> np.ndarray:
    """The read-only times start + i * step, made once per read and shared by every series that has them.

    Making them per series was the largest cost of a one-field read of a whole job (measured:
    a tenth of the service's read time); the series of a job and of its variations mostly share them.
    """
    ts = axes.get((start, step, count))
    if ts is None:
        ts = axes[(start, step, count)] = start + np.arange(count, dtype=np.int64) * step
        ts.flags.writeable = False
    return ts


def key_of(entry: dict, job_id: str) -> SeriesKey:
    """The SeriesKey of a catalogue series entry."""
    return SeriesKey(job_id, entry["measurement"], tuple(sorted(entry["tags"].items())))


def part_pieces(
    path: Path, part: dict, wanted: list[tuple[int, int]], query: ReadQuery, axes: Axes | None = None
) -> dict[int, Piece]:
    """Times and field values of the `wanted` (part-local id, series id) of one part, by series id.

    Only the query's field columns are read; ``_series`` and ``_time`` too unless every series of
    the part is wanted and regular (the catalogue's counts and steps give the rows, and the times
    are shared :func:`regular_axis` arrays from `axes`).

    The file is memory-mapped: its pages come straight from the page cache instead of being
    copied by read(2) into freshly allocated buffers (measured on a comparison of 10 jobs, 700 MB of
    one field: about a third less CPU in the read). Parts are never changed once written (a
    compaction writes a new file and unlinks the old ones, which stay readable while mapped).
    """
    pf = pq.ParquetFile(path, memory_map=True)
    names = [n for n in pf.schema_arrow.names if n not in ("_series", "_time")]
    fields = [n for n in names if not query.fields or n in query.fields]
    out: dict[int, Piece] = {}
    if not fields:
        return out
    if len(wanted) == len(part["series"]) and all(e[4] for e in part["series"]):
        table = pf.read(columns=fields)
        cols = {n: table.column(n).to_numpy() for n in fields}
        row = 0
        axes = {} if axes is None else axes
        for sid, count, start, _end, step in part["series"]:
            out[sid] = (
                regular_axis(axes, start, step, count),
                {n: c[row : row + count] for n, c in cols.items()},
                step,
            )
            row += count
        return out
    locals_ = np.array([w[0] for w in wanted])
    groups = _row_groups(pf, locals_) if len(wanted) < len(part["series"]) else None
    columns = ["_series", "_time", *fields]
    table = pf.read(columns=columns) if groups is None else pf.read_row_groups(groups, columns=columns)
    series_col = table.column("_series").to_numpy()
    time_col = table.column("_time").to_numpy()
    cols = {n: table.column(n).to_numpy() for n in fields}
    lo = np.searchsorted(series_col, locals_, "left")
    hi = np.searchsorted(series_col, locals_, "right")
    for (_local, sid), a, b in zip(wanted, lo, hi, strict=True):
        if b > a:
            out[sid] = (time_col[a:b], {n: c[a:b] for n, c in cols.items()}, 0)
    return out


def series_of(entry: dict, job_id: str, pieces: list[Piece], query: ReadQuery) -> SeriesData | None:
    """One series from its pieces (in time order): sliced, downsampled; None when nothing is left."""
    if not pieces:
        return None
    ts = pieces[0][0] if len(pieces) == 1 else np.concatenate([p[0] for p in pieces])
    # a part holds the union of its series' fields; keep the ones this series has
    names = [n for n in dict.fromkeys(n for p in pieces for n in p[1]) if n in entry["fields"]]
    fields = {
        n: pieces[0][1][n]
        if len(pieces) == 1
        else np.concatenate([p[1].get(n, np.full(len(p[0]), np.nan)) for p in pieces])
        for n in names
    }
    if query.start is not None or query.end is not None:
        window = time_slice(ts, query.start, query.end)
        ts = ts[window]
        fields = {n: v[window] for n, v in fields.items()}
    step = pieces[0][2] if len(pieces) == 1 else 0  # slicing keeps a regular axis regular
    if query.window:
        ts, fields = downsample(ts, fields, query.window, query.aggregate)
        step = 0
    if not len(ts):
        return None
    units = {n: entry["fields"][n] for n in fields if entry["fields"].get(n)}
    return SeriesData(key_of(entry, job_id), ts, fields, units, step)


@dataclass
class JobPlan:
    """What a read takes from one job: its selected series and the parts that hold them."""

    job_dir: Path
    catalog: dict
    query: ReadQuery
    by_key: dict[tuple, int] = field(default_factory=dict)  # (measurement, tags) -> series id
    parts_of: dict[int, list[int]] = field(default_factory=dict)  # series id -> part indexes, in order
    wanted: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # part -> (local, series id)
    axes: Axes = field(default_factory=dict)  # shared regular times; one dict for all jobs of a read
    _loaded: dict[int, dict[int, Piece]] = field(default_factory=dict)
    _left: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, job_dir: Path, catalog: dict, query: ReadQuery, axes: Axes | None = None) -> JobPlan:
        plan = cls(job_dir, catalog, query, axes={} if axes is None else axes)
        for sid, entry in enumerate(catalog["series"]):
            key = key_of(entry, query.job_id)
            if query.matches(key):
                plan.by_key[(key.measurement, key.tags)] = sid
        selected = set(plan.by_key.values())
        for index, part in enumerate(catalog["parts"]):
            wanted = [(local, e[0]) for local, e in enumerate(part["series"]) if e[0] in selected]
            if wanted:
                plan.wanted[index] = wanted
                plan._left[index] = len(wanted)
                for _local, sid in wanted:
                    plan.parts_of.setdefault(sid, []).append(index)
        return plan

    def take(self, sid: int) -> SeriesData | None:
        """Series `sid`, loading the parts it needs; a part is dropped once all it holds was taken."""
        pieces = []
        for index in self.parts_of.get(sid, []):
            loaded = self._loaded.get(index)
            if loaded is None:
                part = self.catalog["parts"][index]
                loaded = self._loaded[index] = part_pieces(
                    self.job_dir / part["file"], part, self.wanted[index], self.query, self.axes
                )
            piece = loaded.pop(sid, None)
            if piece is not None:
                pieces.append(piece)
            self._left[index] -= 1
            if not self._left[index]:
                del self._loaded[index]
        return series_of(self.catalog["series"][sid], self.query.job_id, pieces, self.query)


def read_job(plan: JobPlan) -> list[SeriesData]:
    """Every selected series of one job, sorted by key."""
    out = [s for key in sorted(plan.by_key) if (s := plan.take(plan.by_key[key])) is not None]
    return out


def stream_groups(plans: list[JobPlan], block_values: int = 4_000_000) -> Iterator[list[SeriesData]]:
    """The series of several jobs in blocks of whole groups, sorted by measurement and tags.

    A group is the series of one key from every job that has it, in the order of `plans`; a block
    holds whole groups of about `block_values` timestamps x fields together (see the module
    docstring for the memory this takes).
    """
    block: list[SeriesData] = []
    size = 0
    for key in sorted({k for plan in plans for k in plan.by_key}):
        for plan in plans:
            sid = plan.by_key.get(key)
            if sid is not None and (series := plan.take(sid)) is not None:
                block.append(series)
                size += len(series.timestamps) * (1 + len(series.fields))
        if size >= block_values:
            yield block
            block, size = [], 0
    if block:
        yield block


def _row_groups(pf: pq.ParquetFile, locals_: np.ndarray) -> list[int]:
    """Row groups whose ``series`` statistics may hold any of the wanted part-local ids."""
    col = pf.schema_arrow.get_field_index("_series")
    groups = []
    for i in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max or np.any((locals_ >= stats.min) & (locals_ <= stats.max)):
            groups.append(i)
    return groups
