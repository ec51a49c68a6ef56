"""``ctx.series``: how a running job writes time series to the results service.

One :class:`ResultsConnection` per worker process finds the results service (in the registry,
as ``workmesh-results``, on the first series call of any job) and keeps one gRPC channel to it
for every job. Each job gets a :class:`JobSeries` on its first ``ctx.series`` call: it opens one
``SeriesWriter`` (a single WriteSeries stream) lazily, with ``fresh=True`` on a retried attempt
so the earlier attempt's data cannot clash, and with the attempt's write capability (the
gateway's ``ExecuteRequest.series_token``) when authentication is on. When the handler returns, the worker closes the
writer and puts the SeriesRefs into the job result; when it fails or is cancelled, the writer is
aborted (the results service keeps what it acknowledged and drops the rest).

The shape seen by handlers:

- ``async def`` handlers: ``await ctx.series("heat", asset="b12", units={"Q": "kW"}).write(ts, Q=q)``
  — awaitable; it returns once the data is buffered or handed to the transport and waits while
  the results service is busy (back-pressure).
- ``def`` handlers (a worker thread): the same call without ``await`` blocks the same way (it
  runs on the worker's event loop through the writer's ``blocking()`` facade).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from workmesh.registry import RegistryConfig, find_service
from workmesh.services.clients import ResultsClient, SeriesWriter
from workmesh.services.clients._model import check_name, check_tags
from workmesh.services.clients._model import time_unit as check_unit
from workmesh.services.core.errors import ApplicationError, InvalidArgument, WorkmeshError
from workmesh.v1 import common_pb2
from workmesh.workers._context import Context

RESULTS_SERVICE = "workmesh-results"
UNAVAILABLE = "RESULTS_UNAVAILABLE"
WRITE_FAILED = "RESULTS_WRITE_FAILED"


class ResultsConnection:
    """The worker's connection to the results service, shared by all its jobs.

    It is the Worker's default ``series_factory``: called with a job's context on the job's
    first ``ctx.series`` call, it returns that job's :class:`JobSeries`.

    Args:
        address: ``host:port`` of the results service; empty: look up a passing
            ``workmesh-results`` instance in the registry on first use.
        registry: the ``RegistryConfig`` to look in (None: the worker's, else the environment's).
        chunk_bytes: target chunk size of the job writers.
    """

    def __init__(self, address: str = "", *, registry: Any = None, chunk_bytes: int = 4 << 20) -> None:
        self.address = address
        self.registry = registry
        self.chunk_bytes = chunk_bytes
        self._client: ResultsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    def __call__(self, ctx: Context) -> JobSeries:
        return JobSeries(self, ctx.job_id, ctx.attempt, ctx._job.loop, capability=ctx._job.series_token)

    async def client(self) -> ResultsClient:
        """The shared client (found and connected on first use).

        Raises:
            ApplicationError: code ``RESULTS_UNAVAILABLE`` (retryable) when no results service
                is registered and passing, or the registry cannot be asked.
        """
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a channel belongs to one loop (tests run several)
            self._client, self._loop, self._lock = None, loop, asyncio.Lock()
        async with self._lock:
            if self._client is None:
                self._client = ResultsClient(self.address or await self._find(), timeout=600.0)
            return self._client

    async def _find(self) -> str:
        config = self.registry or RegistryConfig.from_env()
        try:
            instances = await find_service(config, RESULTS_SERVICE)
        except WorkmeshError as exc:
            raise ApplicationError(
                f"cannot write series: the registry at {config.address} cannot be asked for "
                f"{RESULTS_SERVICE!r}: {exc.message}",
                code=UNAVAILABLE,
                retryable=True,
            ) from exc
        if not instances:
            raise ApplicationError(
                f"cannot write series: no passing {RESULTS_SERVICE!r} service in the registry at "
                f"{config.address}; start the results service (`workmesh results`)",
                code=UNAVAILABLE,
                retryable=True,
            )
        return f"{instances[0].address}:{instances[0].port}"

    async def reset(self) -> None:
        """Forget the channel (the service went away): the next job looks it up again."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()

    async def close(self) -> None:
        """Close the channel (the worker stops)."""
        await self.reset()

    def unavailable(self, exc: WorkmeshError) -> ApplicationError:
        """The job error for a results service that stopped answering; the next job looks it up again."""
        client, self._client = self._client, None
        if client is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(client.close()))
        return ApplicationError(
            f"cannot write series: the results service is unavailable: {exc.message}", code=UNAVAILABLE, retryable=True
        )


class JobSeries:
    """The series of one job attempt: one writer, opened on the first write, closed by the worker."""

    def __init__(
        self,
        connection: ResultsConnection,
        job_id: str,
        attempt: int,
        loop: asyncio.AbstractEventLoop,
        *,
        capability: str = "",
    ) -> None:
        self.connection = connection
        self.job_id = job_id
        self.attempt = attempt
        self.loop = loop
        self.capability = capability  # the attempt's series write capability (auth on)
        self.time_unit = ""
        self._opening: asyncio.Task[SeriesWriter] | None = None
        self._writer: SeriesWriter | None = None

    def handle(
        self, measurement: str, *, units: Mapping[str, str] | None, time_unit: str, tags: Mapping[str, str]
    ) -> SeriesStream | BlockingSeriesStream:
        """A series handle: awaitable writes on the event loop, blocking ones in a handler thread."""
        check_name("measurement", measurement)
        check_tags(tags)
        self._use_unit(time_unit)
        if _on_loop(self.loop):
            return SeriesStream(self, measurement, dict(units or {}), dict(tags))
        writer = asyncio.run_coroutine_threadsafe(self.writer(), self.loop).result()
        blocking = writer.blocking()
        return BlockingSeriesStream(self.connection, blocking, blocking.series(measurement, units=units, **tags))

    def _use_unit(self, time_unit: str) -> None:
        check_unit(time_unit)
        if not self.time_unit:
            self.time_unit = time_unit
        elif time_unit != self.time_unit:
            raise InvalidArgument(
                "time_unit",
                f"one job writes all its series with one time unit; this job "
                f"uses {self.time_unit!r}, got {time_unit!r}",
            )

    async def writer(self) -> SeriesWriter:
        """The job's writer, opened once (concurrent first calls share the opening)."""
        if self._writer is not None:
            return self._writer
        opening = self._opening
        if opening is None or (opening.done() and (opening.cancelled() or opening.exception() is not None)):
            opening = self._opening = asyncio.ensure_future(self._open())
        return await asyncio.shield(opening)

    async def _open(self) -> SeriesWriter:
        client = await self.connection.client()
        # A retried attempt starts from nothing: the earlier one may have stored part of the data.
        self._writer = client.writer(
            self.job_id,
            time_unit=self.time_unit or "ns",
            chunk_bytes=self.connection.chunk_bytes,
            fresh=self.attempt > 1,
            capability=self.capability,
        )
        return self._writer

    async def finish(
        self, end: common_pb2.JobResult | common_pb2.JobError
    ) -> common_pb2.JobResult | common_pb2.JobError:
        """Close the writer into a job's result, or abort it after an error; returns how the job ends.

        A failure to store the series fails the job (``RESULTS_WRITE_FAILED``; retryable when
        the results service was unavailable).
        """
        writer = self._writer
        if writer is None:
            return end
        if not isinstance(end, common_pb2.JobResult):
            await writer.abort()
            return end
        try:
            refs = await writer.close()
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - any failure fails the job
            await writer.abort()
            if isinstance(exc, asyncio.CancelledError):
                return common_pb2.JobError(code="CANCELLED", message="stopped while storing its series")
            retryable = isinstance(exc, WorkmeshError) and exc.retryable
            if retryable:
                await self.connection.reset()
            message = exc.message if isinstance(exc, WorkmeshError) else f"{type(exc).__name__}: {exc}"
            return common_pb2.JobError(
                code=WRITE_FAILED, retryable=retryable, message=f"storing the job's series failed: {message}"
            )
        given = list(end.series)  # refs the handler returned itself stay, after the written ones
        seen = {ref.SerializeToString(deterministic=True) for ref in refs}
        del end.series[:]
        end.series.extend(refs)
        end.series.extend(r for r in given if r.SerializeToString(deterministic=True) not in seen)
        return end


class SeriesStream:
    """One series of a job, for ``async def`` handlers: ``await stream.write(ts, **fields)``."""

    def __init__(self, job: JobSeries, measurement: str, units: dict[str, str], tags: dict[str, str]) -> None:
        self._job = job
        self.measurement = measurement
        self.units = units
        self.tags = tags
        self._handle: Any = None

    async def write(self, timestamps: Any, **fields: Any) -> None:
        """Append values: `timestamps` (datetime64, or ints in the series' time unit) and arrays per field.

        Awaiting it applies the back-pressure of the results service. The first write of a job
        connects to the results service.

        Raises:
            ApplicationError: ``RESULTS_UNAVAILABLE`` when no results service is registered.
            InvalidArgument: unequal array lengths, bad names, non-integer timestamps.
        """
        try:
            if self._handle is None:
                writer = await self._job.writer()
                self._handle = writer.series(self.measurement, units=self.units, **self.tags)
            await self._handle.write(timestamps, **fields)
        except WorkmeshError as exc:
            _reraise(self._job.connection, exc)

    async def flush(self) -> None:
        """Wait until everything this job wrote so far is stored (acknowledged by the service)."""
        try:
            await (await self._job.writer()).flush()
        except WorkmeshError as exc:
            _reraise(self._job.connection, exc)


class BlockingSeriesStream:
    """One series of a job, for ``def`` handlers (a worker thread): calls block on the event loop."""

    def __init__(self, connection: ResultsConnection, writer: Any, handle: Any) -> None:
        self._connection = connection
        self._writer = writer
        self._handle = handle

    def write(self, timestamps: Any, **fields: Any) -> None:
        """Append values (see :meth:`SeriesStream.write`); blocks while the service is busy."""
        try:
            self._handle.write(timestamps, **fields)
        except WorkmeshError as exc:
            _reraise(self._connection, exc)

    def flush(self) -> None:
        """Block until everything this job wrote so far is stored (acknowledged by the service)."""
        try:
            self._writer.flush()
        except WorkmeshError as exc:
            _reraise(self._connection, exc)


def _reraise(connection: ResultsConnection, exc: WorkmeshError) -> None:
    """Raise a transient failure of the results service as a retryable job error, others as they are."""
    if exc.retryable and not isinstance(exc, ApplicationError):
        raise connection.unavailable(exc) from exc
    raise exc


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
