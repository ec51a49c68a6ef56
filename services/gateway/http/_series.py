"""Series over HTTP: a job's series list, and series of several jobs as JSON, CSV or Arrow.

``GET /v1/jobs/{job_id}/series`` is the results service's ListSeries; ``GET /v1/series`` its
ReadSeries, through :class:`~workmesh.services.clients.ResultsClient` against the results service
found in the registry (``workmesh-results``). Each job named is looked up through the gateway's
GetJob first, so an unknown job is NOT_FOUND as everywhere else and the job rules apply; with
authentication on, the results service is then called with the gateway's read capability of
exactly those jobs (it cannot verify API tokens, which live in the gateway's job store).
"""

from __future__ import annotations

import csv
import io
import json

import grpc
import numpy as np
import pyarrow as pa
from aiohttp import web

from workmesh.registry import RegistryConfig, find_service
from workmesh.services.clients import ResultsClient
from workmesh.services.clients._errors import from_rpc_error
from workmesh.services.core.auth import CAPABILITY_METADATA, SERIES_READ, SeriesCapabilities, require_scope
from workmesh.services.core.durations import parse_duration
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.http._calls import CallError, invalid, unary
from workmesh.services.gateway.http._messages import json_response
from workmesh.v1 import gateway_pb2, results_pb2

MAX_JOBS = 64
ARROW_STREAM = "application/vnd.apache.arrow.stream"
FORMATS = {"json": "application/json", "csv": "text/csv", "arrow": ARROW_STREAM}
UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}  # per second
AGGREGATES = ("mean", "min", "max", "last")
QUERY = ("job", "measurement", "field", "tag", "start", "end", "unit", "window", "agg", "format")


class ResultsLocator:
    """One ResultsClient per results service address found in the registry, reused."""

    def __init__(self, registry: RegistryConfig, *, timeout: float = 30.0) -> None:
        self._registry = registry
        self._timeout = timeout
        self._clients: dict[str, ResultsClient] = {}

    async def client(self) -> ResultsClient:
        """A client of a passing ``workmesh-results`` instance (UNAVAILABLE when there is none)."""
        instances = await find_service(self._registry, "workmesh-results")
        if not instances:
            raise CallError(grpc.StatusCode.UNAVAILABLE, "no passing workmesh-results instance in the registry")
        address = f"{instances[0].address}:{instances[0].port}"
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = ResultsClient(address, timeout=self._timeout)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _format(request: web.Request) -> str:
    explicit = request.query.get("format")
    if explicit is not None:
        if explicit not in FORMATS:
            raise invalid("format", f"must be one of {', '.join(FORMATS)}, got {explicit!r}")
        return explicit
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == "text/csv":
            return "csv"
        if media in (ARROW_STREAM, "application/vnd.apache.arrow.file"):
            return "arrow"
        if media in ("application/json", "*/*", "application/*"):
            return "json"
    return "json"  # RFC 9110 lets a server ignore an Accept it cannot satisfy


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(name, f"must be an integer, got {raw[:40]!r}") from None


def _window(raw: str, per_second: int) -> int:
    if raw in ("", "0"):
        return 0
    try:
        seconds = parse_duration(raw)
    except ValueError:
        raise invalid("window", f"must be a duration such as 1d, 12h, 15m or 3600s, got {raw[:40]!r}") from None
    window = round(seconds * per_second)
    if window < 1 or window >= 1 << 62:
        raise invalid("window", "must be at least one time unit and below 2^62 units")
    return window


class SeriesRoutes:
    """``/v1/jobs/{job_id}/series`` and ``/v1/series`` over the results client."""

    def __init__(self, servicer, results: ResultsLocator, capabilities: SeriesCapabilities | None = None) -> None:
        self._servicer = servicer
        self._results = results
        self._capabilities = capabilities

    def _vouched(self, job_ids: list[str]) -> tuple[tuple[str, str], ...] | None:
        """The read capability of `job_ids`, once the caller was checked for every one of them."""
        if self._capabilities is None:
            return None
        return ((CAPABILITY_METADATA, self._capabilities.reading(job_ids)),)

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v1/jobs/{job_id:[^/:]+}/series", self.list_series)
        app.router.add_get("/v1/series", self.read_series)

    async def _job(self, job_id: str) -> None:
        try:
            require_scope(SERIES_READ)  # with authentication on; GetJob then applies the job's rules
        except WorkmeshError as exc:
            raise CallError.of(exc) from None
        await unary(self._servicer.GetJob, gateway_pb2.GetJobRequest(job_id=job_id))

    async def list_series(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        for key in request.query:
            raise invalid(key, "unknown query parameter; this route takes none")
        await self._job(job_id)
        client = await self._results.client()
        try:
            reply = await client.stub.ListSeries(
                results_pb2.ListSeriesRequest(job_id=job_id), timeout=client.timeout, metadata=self._vouched([job_id])
            )
        except grpc.aio.AioRpcError as exc:
            raise CallError.of(from_rpc_error(exc)) from exc
        return json_response(reply)

    async def read_series(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        for key in query:
            if key not in QUERY:
                raise invalid(key, f"unknown query parameter; expected one of {', '.join(QUERY)}")
        for key in ("measurement", "start", "end", "unit", "window", "agg", "format"):
            if len(query.getall(key, ())) > 1:
                raise invalid(key, "must be given once")
        jobs = query.getall("job", [])
        if not jobs:
            raise invalid("job", "at least one job id is required (job=A&job=B)")
        if len(jobs) > MAX_JOBS:
            raise invalid("job", f"at most {MAX_JOBS} jobs at once, got {len(jobs)}")
        unit = query.get("unit", "s")
        if unit not in UNITS:
            raise invalid("unit", f"must be one of {', '.join(UNITS)}, got {unit[:40]!r}")
        agg = query.get("agg", "")
        if agg and agg not in AGGREGATES:
            raise invalid("agg", f"must be one of {', '.join(AGGREGATES)}, got {agg[:40]!r}")
        window = _window(query.get("window", ""), UNITS[unit])
        if window and not agg:
            agg = "mean"
        if agg and not window:
            raise invalid("window", "is required with agg")
        tags = {}
        for pair in query.getall("tag", []):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise invalid("tag", f"must be KEY=VALUE, got {pair[:40]!r}")
            tags[key] = value
        fmt = _format(request)
        start, end = _int(request, "start"), _int(request, "end")
        for job_id in dict.fromkeys(jobs):
            await self._job(job_id)
        client = await self._results.client()
        try:
            series = await client.read(
                jobs,
                measurement=query.get("measurement", ""),
                tags=tags,
                fields=query.getall("field", []),
                start=start,
                end=end,
                time_unit=unit,
                window=window,
                aggregate=agg,
                metadata=self._vouched(jobs),
            )
        except Exception as exc:
            raise CallError.of(exc) from exc
        if fmt == "csv":
            return web.Response(
                body=_csv(series),
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": 'attachment; filename="series.csv"'},
            )
        if fmt == "arrow":
            return web.Response(body=_arrow(series, unit), content_type=ARROW_STREAM)
        body = {
            "unit": unit,
            "series": [
                {
                    "jobId": s.job_id,
                    "measurement": s.measurement,
                    "tags": s.tags,
                    "timestamps": s.timestamps.tolist(),
                    "units": s.units,
                    "fields": {name: _floats(values) for name, values in s.fields.items()},
                }
                for s in series
            ],
        }
        return web.json_response(body, dumps=lambda v: json.dumps(v, separators=(",", ":"), allow_nan=False))


def _floats(values: np.ndarray) -> list:
    # NaN marks a missing value; JSON has null for that.
    return [None if v != v else v for v in values.tolist()]


def _label(series, field: str) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(series.tags.items()))
    return f"{series.job_id}/{series.measurement}" + (f"[{tags}]" if tags else "") + f"/{field}"


def _csv(series) -> bytes:
    """One time column, then one column per job, series and field (empty where no value)."""
    times = np.unique(np.concatenate([s.timestamps for s in series])) if series else np.array([], "int64")
    columns, labels = [], []
    for s in series:
        index = np.searchsorted(times, s.timestamps)
        for name, values in s.fields.items():
            column = np.full(times.size, np.nan)
            column[index] = values
            columns.append(column)
            labels.append(_label(s, name))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", *labels])
    rows = np.column_stack(columns).tolist() if columns else [[] for _ in range(times.size)]
    for t, row in zip(times.tolist(), rows, strict=True):
        writer.writerow([t, *("" if v != v else repr(v) for v in row)])
    return out.getvalue().encode()


def _arrow(series, unit: str) -> bytes:
    """Long format: job_id, measurement, tags (JSON), field, time (int64 in `unit`), value."""
    parts: dict[str, list] = {"job_id": [], "measurement": [], "tags": [], "field": [], "time": [], "value": []}
    for s in series:
        tags = json.dumps(s.tags, sort_keys=True)
        for name, values in s.fields.items():
            n = values.size
            parts["job_id"].append(pa.array([s.job_id] * n, pa.string()))
            parts["measurement"].append(pa.array([s.measurement] * n, pa.string()))
            parts["tags"].append(pa.array([tags] * n, pa.string()))
            parts["field"].append(pa.array([name] * n, pa.string()))
            parts["time"].append(pa.array(s.timestamps, pa.int64()))
            parts["value"].append(pa.array(values, pa.float64(), from_pandas=True))
    types: dict[str, pa.DataType] = {"time": pa.int64(), "value": pa.float64()}
    table = pa.table(
        # pyarrow-stubs have an overload per concrete type only, none for a DataType chosen at run time.
        {name: pa.chunked_array(chunks, types.get(name, pa.string())) for name, chunks in parts.items()},  # type: ignore[call-overload]
        metadata={"time_unit": unit},
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
