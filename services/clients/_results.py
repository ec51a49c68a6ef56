"""ResultsClient: write, read, list and delete series through the results service."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np

from workmesh.registry import RegistryConfig, find_service
from workmesh.services.clients._errors import from_rpc_error
from workmesh.services.clients._local import LocalUnavailable, read_local
from workmesh.services.clients._model import (
    SeriesKey,
    SeriesSummary,
    check_job_id,
    chunk_timestamps,
)
from workmesh.services.clients._model import time_unit as _time_unit
from workmesh.services.clients._packed import parse_response
from workmesh.services.clients._wire import HTTP2_OPTIONS, serialize
from workmesh.services.clients._writer import SeriesWriter
from workmesh.services.core.auth import CAPABILITY_METADATA, bearer_interceptors
from workmesh.services.core.errors import InvalidArgument, Unavailable
from workmesh.services.core.gcpause import collector_paused
from workmesh.services.core.limits import message_options
from workmesh.services.core.telemetry import client_interceptors
from workmesh.services.core.tls import TlsConfig
from workmesh.v1 import common_pb2, results_pb2, results_pb2_grpc

_AGGREGATES = {
    "": results_pb2.AGGREGATE_UNSPECIFIED,
    "mean": results_pb2.AGGREGATE_MEAN,
    "min": results_pb2.AGGREGATE_MIN,
    "max": results_pb2.AGGREGATE_MAX,
    "last": results_pb2.AGGREGATE_LAST,
}


@dataclass
class Series:
    """One series as read: timestamps in the requested unit, float64 fields (NaN: missing)."""

    job_id: str
    measurement: str
    tags: dict[str, str]
    timestamps: np.ndarray
    fields: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.job_id, self.measurement, tuple(sorted(self.tags.items())))


class ResultsClient:
    """An asyncio client of the results service.

    Args:
        address: ``host:port`` of the results service.
        timeout: seconds per unary call and per read.
        tls: TLS of the channel (when it has a CA); default: from ``WORKMESH_TLS_*``, so that
            every caller in a process with TLS on calls the results service over TLS.
        token: a JWT sent as ``authorization: Bearer`` with every call, for ListSeries and
            ReadSeries when the results service authenticates (``series:read``); empty: none.
        local_reads: ask the results service for its Parquet files instead of the values
            (``ReadSeriesRequest.local``; much less copying, see
            :mod:`workmesh.services.results._local`). None (default): when `address` is a
            loopback address. Where the files cannot be had (another host, no socket), the read
            is made over gRPC as usual, and so are the client's later reads.

    Use as ``async with ResultsClient(addr) as client: ...`` or call :meth:`close`.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = 60.0,
        tls: TlsConfig | None = None,
        token: str = "",
        local_reads: bool | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.local_reads = _loopback(address) if local_reads is None else local_reads

        tls = TlsConfig.from_env() if tls is None else tls
        self._channel = tls.aio_channel(
            address,
            [
                *message_options(),
                *HTTP2_OPTIONS,
            ],
            interceptors=[*client_interceptors("results-client"), *bearer_interceptors(token)],
        )
        self.stub = results_pb2_grpc.ResultsStub(self._channel)
        # The series themselves skip the protobuf runtime's copies (see _wire).
        self._write_series = self._channel.stream_stream(
            "/workmesh.v1.Results/WriteSeries",
            request_serializer=serialize,
            response_deserializer=results_pb2.WriteSeriesResponse.FromString,
        )
        self._read_series = self._channel.unary_stream(
            "/workmesh.v1.Results/ReadSeries",
            request_serializer=results_pb2.ReadSeriesRequest.SerializeToString,
            response_deserializer=_parse_read,  # local, packed or chunked, as the service answers
        )

    @classmethod
    async def from_registry(cls, config=None, **kwargs) -> ResultsClient:
        """A client of a passing ``workmesh-results`` instance found in the registry.

        Args:
            config: a ``workmesh.registry.RegistryConfig`` (default: from the environment).

        Raises:
            Unavailable: no instance is registered and passing.
        """
        instances = await find_service(config or RegistryConfig.from_env(), "workmesh-results")
        if not instances:
            raise Unavailable("no passing workmesh-results instance in the registry")
        return cls(f"{instances[0].address}:{instances[0].port}", **kwargs)

    def writer(
        self,
        job_id: str,
        *,
        time_unit: str | int = "ns",
        chunk_bytes: int = 4 << 20,
        fresh: bool = False,
        capability: str = "",
    ) -> SeriesWriter:
        """A :class:`SeriesWriter` streaming the series of `job_id` over one WriteSeries call.

        With ``fresh=True`` the job's stored series are deleted before the first write (use it
        for a retried attempt: the data of the earlier attempt would clash with the new one).
        `capability`: the attempt's series write capability (required when the results service
        authenticates, see :mod:`workmesh.services.core.auth`).
        """
        return SeriesWriter(
            self.stub,
            job_id,
            time_unit=time_unit,
            chunk_bytes=chunk_bytes,
            fresh=fresh,
            write_series=self._write_series,
            capability=capability,
        )

    async def write(
        self,
        job_id: str,
        measurement: str,
        timestamps,
        *,
        tags: Mapping[str, str] | None = None,
        units: Mapping[str, str] | None = None,
        time_unit: str | int = "ns",
        **fields,
    ) -> list[common_pb2.SeriesRef]:
        """Write one series in one call and return its SeriesRefs (one per field)."""
        writer = self.writer(job_id, time_unit=time_unit)
        try:
            await writer.series(measurement, units=units, **(tags or {})).write(timestamps, **fields)
            return await writer.close()
        except BaseException:
            await writer.abort()
            raise

    async def read(
        self,
        job_ids: str | Sequence[str],
        *,
        measurement: str = "",
        tags: Mapping[str, str] | None = None,
        fields: Sequence[str] = (),
        start: int | None = None,
        end: int | None = None,
        time_unit: str | int = "ns",
        window: int = 0,
        aggregate: str = "",
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> list[Series]:
        """Read series of one or several jobs; series with equal measurement and tags share timestamps.

        Args:
            job_ids: one job id or several (to compare variations).
            measurement, tags: filter (every given tag must match).
            fields: fields to return (empty: all).
            start, end: [start, end) in `time_unit` (None: open).
            window, aggregate: downsample into windows of `window` (in `time_unit`) with
                ``"mean"``, ``"min"``, ``"max"`` or ``"last"``.
            metadata: call metadata (e.g. the caller's ``authorization``, forwarded).

        A series that came in one chunk is a read-only view of the received message (no copy),
        and one read from the service's files a read-only view of its decoded column; copy an
        array (``np.array(a)``) to change it in place. Python's cyclic garbage collector is
        paused while the read runs (:func:`~workmesh.services.core.gcpause.collector_paused`).
        """
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        if aggregate not in _AGGREGATES:
            raise InvalidArgument("aggregate", f"must be one of mean, min, max, last, got {aggregate!r}")
        request = results_pb2.ReadSeriesRequest(
            job_ids=ids,
            measurement=measurement,
            tags=dict(tags or {}),
            fields=list(fields),
            start=start,
            end=end,
            time_unit=_time_unit(time_unit),
            window=window,
            aggregate=_AGGREGATES[aggregate],
            packed=True,
            local=self.local_reads,
        )
        # A read builds a few objects per series, none of them garbage: collecting during it
        # only rescans the heap (a full collection in most 10-job comparisons, see gcpause).
        with collector_paused():
            try:
                return await self._read(request, metadata)
            except LocalUnavailable:
                self.local_reads = False  # the service is not on this host after all: gRPC from now on
                request.local = False
                return await self._read(request, metadata)

    async def _read(self, request: results_pb2.ReadSeriesRequest, metadata) -> list[Series]:
        out: list[Series] = []
        parts: list = []
        axes: dict[tuple[int, int, int], np.ndarray] = {}
        try:
            async for chunks in self._read_series(request, timeout=self.timeout, metadata=metadata):
                if isinstance(chunks, results_pb2.LocalRead):
                    return [Series(*row) for row in await read_local(chunks, self.timeout)]
                for chunk in chunks:
                    if parts and chunk.key != parts[0].key:
                        out.append(_series(parts, axes))
                        parts = []
                    parts.append(chunk)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        if parts:
            out.append(_series(parts, axes))
        return out

    async def list_series(self, job_id: str) -> list[SeriesSummary]:
        """The series of a job with fields, counts, time span (ns) and units."""
        try:
            response = await self.stub.ListSeries(results_pb2.ListSeriesRequest(job_id=job_id), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        return [
            SeriesSummary(
                SeriesKey(job_id, s.key.measurement, tuple(sorted(s.key.tags.items()))),
                tuple(s.fields),
                s.count,
                s.start,
                s.end,
                dict(s.units),
            )
            for s in response.series
        ]

    async def delete(self, job_id: str, *, capability: str = "") -> int:
        """Delete every series of a job; returns how many there were.

        `capability`: the gateway's delete capability of the job, when the results service
        authenticates (only the gateway deletes then, on DeleteJob).
        """
        check_job_id(job_id)
        metadata = ((CAPABILITY_METADATA, capability),) if capability else None
        try:
            response = await self.stub.DeleteSeries(
                results_pb2.DeleteSeriesRequest(job_id=job_id), timeout=self.timeout, metadata=metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.series

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> ResultsClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _parse_read(raw: bytes):
    """A ReadSeriesResponse: its LocalRead, or its series (see :func:`parse_response`)."""
    if raw[:1] == b"\x22":  # field 4, local: the only field of that response
        response = results_pb2.ReadSeriesResponse.FromString(raw)
        if response.HasField("local"):
            return response.local
    return parse_response(raw)


def _loopback(address: str) -> bool:
    """Whether `address` (``host:port`` or ``unix:``) is on this host."""
    if address.startswith("unix:"):
        return True
    host = address.rpartition(":")[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _series(parts: list, axes: dict[tuple[int, int, int], np.ndarray]) -> Series:
    """One series from its consecutive chunks (views of the messages when it came in one chunk).

    Regular timestamps sent as start and step are made once per read and shared (read-only) by
    the series that have them — the components of a job, and a comparison's aligned variations:
    making them per series cost as much client time as the values' bytes (measured).
    """
    first = parts[0]
    ts = _regular(first, axes) if len(parts) == 1 else None
    if ts is None:
        ts = _joined([chunk_timestamps(p) for p in parts])
    fields = {
        c.name: _joined([np.frombuffer(p.fields[i].values, "<f8") for p in parts]) for i, c in enumerate(first.fields)
    }
    units = {c.name: c.unit for c in first.fields if c.unit}
    return Series(first.key.job_id, first.key.measurement, dict(first.key.tags), ts, fields, units)


def _regular(chunk, axes: dict[tuple[int, int, int], np.ndarray]) -> np.ndarray | None:
    """The shared timestamps of a chunk sent as start and step, or None when it carries them."""
    if chunk.timestamps or chunk.time_step <= 0 or not chunk.fields:
        return None
    axis = (chunk.time_start, chunk.time_step, len(chunk.fields[0].values) // 8)
    ts = axes.get(axis)
    if ts is None:
        ts = axes[axis] = chunk_timestamps(chunk)
        ts.flags.writeable = False
    return ts


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
