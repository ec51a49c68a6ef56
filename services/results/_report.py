"""What the CLI shows of series: a listing, a CSV export and a PNG chart comparing jobs.

Every function takes a results service address (or an open :class:`ResultsClient`).
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from workmesh.services.clients._results import ResultsClient, Series
from workmesh.services.core.errors import NotFound


@contextlib.asynccontextmanager
async def _open(client: ResultsClient | str) -> AsyncIterator[ResultsClient]:
    if isinstance(client, ResultsClient):
        yield client
        return
    async with ResultsClient(client) as opened:
        yield opened


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _label(series: Series, with_job: bool) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(series.tags.items()))
    name = series.measurement + (f",{tags}" if tags else "")
    return f"{series.job_id}:{name}" if with_job else name


async def series_rows(client: ResultsClient | str, job_id: str) -> list[dict]:
    """The series of a job as JSON-ready rows (one per series), for a table or ``--json``.

    Each row: ``measurement``, ``tags`` (dict), ``fields`` (list), ``units`` (dict), ``count``,
    ``start``/``end`` (ISO 8601 UTC) and ``start_ns``/``end_ns``.
    """
    async with _open(client) as c:
        found = await c.list_series(job_id)
    return [
        {
            "measurement": s.key.measurement,
            "tags": dict(s.key.tags),
            "fields": list(s.fields),
            "units": dict(s.units),
            "count": s.count,
            "start": _iso(s.start),
            "end": _iso(s.end),
            "start_ns": s.start,
            "end_ns": s.end,
        }
        for s in found
    ]


async def _read_field(
    c: ResultsClient,
    job_ids: Sequence[str],
    field: str,
    measurement: str,
    tags: Mapping[str, str] | None,
    window: int,
    aggregate: str,
) -> list[Series]:
    found = await c.read(
        list(job_ids), measurement=measurement, tags=tags, fields=[field], window=window, aggregate=aggregate
    )
    found = [s for s in found if field in s.fields]
    if not found:
        raise NotFound(f"no series with field {field!r} in job(s) {', '.join(job_ids)}")
    return found


async def export_csv(
    client: ResultsClient | str,
    job_ids: str | Sequence[str],
    field: str,
    out: TextIO,
    *,
    measurement: str = "",
    tags: Mapping[str, str] | None = None,
) -> int:
    """Write one field of one or several jobs as CSV; returns the number of data rows.

    Wide format, one row per timestamp: ``time`` (ISO 8601 UTC), ``time_ns``, then one column per
    series, named ``job:measurement,tag=value`` (the job only when several are given). Empty
    cells: no value at that time.
    """
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    async with _open(client) as c:
        found = await _read_field(c, ids, field, measurement, tags, 0, "")
    axis = np.unique(np.concatenate([s.timestamps for s in found]))
    columns = []
    for s in found:
        full = np.full(len(axis), np.nan)
        full[np.searchsorted(axis, s.timestamps)] = s.fields[field]
        columns.append(full)
    writer = csv.writer(out)
    unit = next((s.units[field] for s in found if s.units.get(field)), "")
    writer.writerow(["time", "time_ns", *(_label(s, len(ids) > 1) + (f" [{unit}]" if unit else "") for s in found)])
    times = axis.astype("datetime64[ns]").astype("datetime64[s]").astype(str)
    text = [["" if v != v else repr(v) for v in col.tolist()] for col in columns]  # v != v: NaN
    for i, t in enumerate(axis):
        writer.writerow([f"{times[i]}Z", int(t), *(col[i] for col in text)])
    return len(axis)


async def plot_series(
    client: ResultsClient | str,
    job_ids: str | Sequence[str],
    field: str,
    out: str | Path,
    *,
    measurement: str = "",
    tags: Mapping[str, str] | None = None,
    window: int = 0,
    aggregate: str = "",
    title: str | None = None,
    size: tuple[float, float] = (10.0, 5.0),
    dpi: int = 100,
) -> Path:
    """Draw one field of one or several jobs into a PNG line chart (one line per job and series).

    Args:
        window, aggregate: optional downsampling (ns window, mean/min/max/last) for long series.
        size, dpi: figure size in inches and resolution; the PNG is size x dpi pixels.

    Returns:
        The path of the PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    async with _open(client) as c:
        found = await _read_field(c, ids, field, measurement, tags, window, aggregate)
    unit = next((s.units[field] for s in found if s.units.get(field)), "")
    per_job = {job: sum(1 for s in found if s.job_id == job) for job in ids}
    fig = Figure(figsize=size, dpi=dpi)
    ax = fig.add_subplot()
    for s in found:
        label = s.job_id if per_job[s.job_id] == 1 else f"{s.job_id} {_label(s, False)}"
        ax.plot(s.timestamps.astype("datetime64[ns]"), s.fields[field], label=label, linewidth=1)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{field} [{unit}]" if unit else field)
    ax.set_title(title or f"{field}" + (f" ({aggregate} per window)" if window else ""))
    ax.grid(True, alpha=0.3)
    if len(found) <= 20:
        ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, format="png", dpi=dpi)
    return path
