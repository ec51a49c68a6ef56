"""SeriesWriter: what a running job writes its series with, streamed over one WriteSeries call.

Writes are buffered per series into chunks of about ``chunk_bytes`` and streamed with gRPC
flow control: ``await handle.write(...)`` returns once its data is buffered or handed to the
transport, and waits while the results service is busy storing — that is the back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np

from workmesh.services.clients._errors import from_rpc_error
from workmesh.services.clients._model import SeriesKey, check_job_id, check_name, check_tags, time_unit
from workmesh.services.clients._wire import WRITE_ACCEPTED, chunk_message, encode_key
from workmesh.services.core.auth import CAPABILITY_METADATA
from workmesh.services.core.errors import FailedPrecondition, InvalidArgument
from workmesh.v1 import common_pb2, results_pb2, results_pb2_grpc

_NP_UNITS: dict[int, str] = {
    results_pb2.TIME_UNIT_SECONDS: "s",
    results_pb2.TIME_UNIT_MILLISECONDS: "ms",
    results_pb2.TIME_UNIT_MICROSECONDS: "us",
    results_pb2.TIME_UNIT_NANOSECONDS: "ns",
}


class SeriesWriter:
    """Streams the series of one job to the results service.

    Use from async code::

        writer = client.writer(job_id, time_unit="s")
        await writer.series("heat", asset="b12", units={"Q": "kW"}).write(ts, Q=q, T=t)
        refs = await writer.close()   # SeriesRefs of everything written (for the job result)

    From a synchronous handler running in a worker thread, use :meth:`blocking` (created on
    the event loop) — its methods run the same calls on the writer's loop and wait for them.

    The service stores chunks in batches and acknowledges each stored batch; :meth:`flush`
    waits for that. If the writer is aborted or the call breaks, the service keeps exactly the
    acknowledged chunks (``acked_chunks`` of ``sent_chunks``) and drops the rest.

    Args:
        stub: a ``ResultsStub`` on an open channel.
        job_id: the job whose series these are.
        time_unit: unit of integer timestamps (``"s"``, ``"ms"``, ``"us"``, ``"ns"``);
            numpy datetime64 timestamps are converted to it.
        chunk_bytes: target chunk payload; a series' buffer is sent when it reaches it, and all
            buffers when together they hold twice as much.
        timeout: seconds for close() to wait for the final acknowledgement.
        fresh: delete what is stored for the job before the first write — for a retried
            attempt, whose predecessor may have stored part of the same series.
        write_series: the WriteSeries method with :func:`~workmesh.services.clients._wire.serialize`
            as its request serializer, so that chunks go out as the bytes they were encoded to
            (``ResultsClient`` passes it); without it, each chunk is parsed into a message first.
        capability: the attempt's series write capability (``ExecuteRequest.series_token``),
            sent as call metadata when the results service authenticates writes; empty: none.
    """

    def __init__(
        self,
        stub: results_pb2_grpc.ResultsStub,
        job_id: str,
        *,
        time_unit: str | int = "ns",
        chunk_bytes: int = 4 << 20,
        timeout: float | None = 600.0,
        fresh: bool = False,
        write_series=None,
        capability: str = "",
    ) -> None:
        self._stub = stub
        self._metadata = ((CAPABILITY_METADATA, capability),) if capability else None
        self._write_series = write_series
        self.fresh = fresh
        self.job_id = check_job_id(job_id)
        self.time_unit = _unit(time_unit)
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self._handles: dict[SeriesKey, SeriesHandle] = {}
        self._buffered = 0
        # Requests are messages or their bytes (write_series serialises them already).
        self._call: grpc.aio.StreamStreamCall[Any, results_pb2.WriteSeriesResponse] | None = None
        self._reader: asyncio.Task | None = None
        self._acked = asyncio.Condition()
        self._lock = asyncio.Lock()
        self.sent_chunks = 0
        self.acked_chunks = 0
        self.acked_values = 0
        self._refs: list[common_pb2.SeriesRef] = []
        self._closed = False
        self._ended = False  # the call's responses have ended (done, or an error)
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # created outside a loop: blocking() binds it later
            self._loop = asyncio.get_running_loop()

    def series(self, measurement: str, /, *, units: Mapping[str, str] | None = None, **tags: str) -> SeriesHandle:
        """The handle of one series (created on first use); `units` maps field -> display unit."""
        key = SeriesKey(self.job_id, check_name("measurement", measurement), check_tags(tags))
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = SeriesHandle(self, key)
        if units:
            handle.units.update(units)
        return handle

    async def flush(self) -> None:
        """Send every buffer and wait until the service acknowledges all of it as stored."""
        await self._send_buffers(lambda h: True)
        if self._call is None:
            return
        await self._write(results_pb2.WriteSeriesRequest(flush=True))
        async with self._acked:
            await self._acked.wait_for(lambda: self.acked_chunks >= self.sent_chunks or self._ended)
        if self._ended and self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._raise_failure()

    async def close(self) -> list[common_pb2.SeriesRef]:
        """Send what is buffered, end the call and return the SeriesRefs of everything stored."""
        if self._closed:
            return list(self._refs)
        await self._send_buffers(lambda h: True)
        self._closed = True
        if self._call is None or self._reader is None:  # both set on the first write
            return []
        try:
            await self._call.done_writing()
            await asyncio.wait_for(asyncio.shield(self._reader), self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        return list(self._refs)

    async def abort(self) -> None:
        """Cancel the call: the service keeps what it acknowledged and drops the rest."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)

    def blocking(self) -> BlockingSeriesWriter:
        """A synchronous facade for handler threads (call this on the event loop)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return BlockingSeriesWriter(self, self._loop)

    async def __aenter__(self) -> SeriesWriter:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()

    # -- internals ---------------------------------------------------------------------------

    async def _buffered_write(self, handle: SeriesHandle, size: int) -> None:
        self._buffered += size
        if handle.size >= self.chunk_bytes:
            await self._send_buffers(lambda h: h is handle)
        if self._buffered >= 2 * self.chunk_bytes:
            await self._send_buffers(lambda h: True)

    async def _send_buffers(self, which) -> None:
        for handle in list(self._handles.values()):
            if handle.size and which(handle):
                chunk, size = handle.take()
                self._buffered -= size
                await self._write(chunk)
                self.sent_chunks += 1

    async def _write(self, request: results_pb2.WriteSeriesRequest | bytes) -> None:
        if self._closed:
            raise FailedPrecondition("the series writer is closed")
        if self._write_series is None and isinstance(request, bytes):
            request = results_pb2.WriteSeriesRequest.FromString(request)
        async with self._lock:  # one message at a time on the stream
            if self._call is None:
                if self.fresh:
                    await self._delete_earlier()
                self._call = (self._write_series or self._stub.WriteSeries)(metadata=self._metadata)
                self._reader = asyncio.create_task(self._read_acks(self._call))
                await self._accepted()
            self._raise_failure()
            try:
                await self._call.write(request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                if self._reader is not None:
                    await asyncio.gather(self._reader, return_exceptions=True)
                self._raise_failure()
                raise FailedPrecondition(f"the WriteSeries call ended: {exc}") from exc

    async def _accepted(self) -> None:
        """Wait until the service has accepted the call; raise its own status if it refused it.

        Nothing is written before: a message racing the refusal fails on this side, and the
        call's status then becomes grpc.aio's INTERNAL instead of the service's (see
        :data:`~workmesh.services.clients._wire.WRITE_ACCEPTED`).
        """
        assert self._call is not None and self._reader is not None
        try:
            metadata = await self._call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        if WRITE_ACCEPTED in tuple(metadata or ()):
            return
        # A refusal: no initial metadata but the status (trailers only); the reader ends with it.
        await asyncio.gather(self._reader, return_exceptions=True)
        self._raise_failure()
        raise FailedPrecondition(
            "the WriteSeries call ended before the results service accepted it (a service without"
            f" the {WRITE_ACCEPTED[0]!r} handshake?)"
        )

    async def _delete_earlier(self) -> None:
        try:
            await self._stub.DeleteSeries(
                results_pb2.DeleteSeriesRequest(job_id=self.job_id, restart=True),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise from_rpc_error(exc) from exc

    async def _read_acks(self, call: grpc.aio.StreamStreamCall[Any, results_pb2.WriteSeriesResponse]) -> None:
        try:
            while True:
                response = await call.read()
                if not isinstance(response, results_pb2.WriteSeriesResponse):  # grpc.aio.EOF
                    return
                async with self._acked:
                    self.acked_chunks = response.acked_chunks
                    self.acked_values = response.values
                    if response.done:
                        self._refs = list(response.series)
                    self._acked.notify_all()
        finally:
            # wake flush() also when the call failed: it then raises the call's error
            self._ended = True
            async with self._acked:
                self._acked.notify_all()

    def _raise_failure(self) -> None:
        if self._reader is not None and self._reader.done() and not self._reader.cancelled():
            exc = self._reader.exception()
            if isinstance(exc, grpc.aio.AioRpcError):
                raise from_rpc_error(exc) from exc
            if exc is not None:
                raise exc


class SeriesHandle:
    """One series of a :class:`SeriesWriter`; ``write`` appends values and may send a chunk."""

    def __init__(self, writer: SeriesWriter, key: SeriesKey) -> None:
        self.writer = writer
        self.key = key
        self.units: dict[str, str] = {}
        self._key_field = encode_key(key)
        self._times: list[np.ndarray] = []
        self._fields: list[dict[str, np.ndarray]] = []
        self.size = 0

    async def write(self, timestamps: Sequence[Any] | np.ndarray, **fields: Sequence[float] | np.ndarray) -> None:
        """Append values: `timestamps` (ints in the writer's unit, or datetime64) and one array per field.

        Raises:
            InvalidArgument: no fields, invalid field names or arrays of unequal length.
        """
        ts = np.asarray(timestamps)
        if np.issubdtype(ts.dtype, np.datetime64):
            ts = ts.astype(f"datetime64[{_NP_UNITS[self.writer.time_unit]}]").view(np.int64)
        elif len(ts) and not np.issubdtype(ts.dtype, np.integer):
            raise InvalidArgument("timestamps", f"must be integers or datetime64, got {ts.dtype}")
        ts = ts.astype(np.int64, copy=False)
        if not fields:
            raise InvalidArgument("fields", "at least one field is required")
        columns = {}
        for name, values in fields.items():
            check_name("fields", name)
            col = np.asarray(values, dtype=np.float64)
            if col.shape != ts.shape:
                raise InvalidArgument(
                    f"fields[{name!r}]",
                    f"has {col.size} values for {ts.size} timestamps; arrays must have equal length",
                )
            columns[name] = col
        if not len(ts):
            return
        if self._fields and self._fields[-1].keys() != columns.keys():
            chunk, size = self.take()  # a chunk has one field set: send the old one first
            self.writer._buffered -= size
            await self.writer._write(chunk)
            self.writer.sent_chunks += 1
        size = ts.nbytes * (1 + len(columns))
        self._times.append(ts)
        self._fields.append(columns)
        self.size += size
        await self.writer._buffered_write(self, size)

    def take(self) -> tuple[bytes, int]:
        """Turn the buffer into one encoded WriteSeriesRequest and empty it."""
        ts = self._times[0] if len(self._times) == 1 else np.concatenate(self._times)
        names = self._fields[0].keys()
        fields = {
            n: self._fields[0][n] if len(self._fields) == 1 else np.concatenate([f[n] for f in self._fields])
            for n in names
        }
        size, self.size, self._times, self._fields = self.size, 0, [], []
        return chunk_message(self._key_field, ts, fields, self.units, self.writer.time_unit), size


class BlockingSeriesWriter:
    """The synchronous form of a SeriesWriter, for handler code running in a thread.

    Every method runs the async one on the writer's event loop and waits for it, so the same
    back-pressure applies. Do not use it on the event loop thread itself (it would deadlock).
    """

    def __init__(self, writer: SeriesWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self._loop = loop

    def _run(self, coro):
        if _on_loop(self._loop):
            coro.close()
            raise RuntimeError("BlockingSeriesWriter used on its event loop thread; await the SeriesWriter instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def series(self, measurement: str, /, *, units: Mapping[str, str] | None = None, **tags: str) -> _BlockingHandle:
        """Blocking :meth:`SeriesWriter.series`; returns a handle whose ``write`` blocks."""

        async def make() -> SeriesHandle:  # on the loop: the writer's state is not thread-safe
            return self.writer.series(measurement, units=units, **tags)

        return _BlockingHandle(self, self._run(make()))

    def flush(self) -> None:
        """Blocking :meth:`SeriesWriter.flush`."""
        self._run(self.writer.flush())

    def close(self) -> list[common_pb2.SeriesRef]:
        """Blocking :meth:`SeriesWriter.close`; returns the SeriesRefs."""
        return self._run(self.writer.close())


class _BlockingHandle:
    def __init__(self, owner: BlockingSeriesWriter, handle: SeriesHandle) -> None:
        self._owner = owner
        self._handle = handle

    def write(self, timestamps, **fields) -> None:
        """Blocking :meth:`SeriesHandle.write`."""
        self._owner._run(self._handle.write(timestamps, **fields))


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _unit(unit: str | int) -> results_pb2.TimeUnit:
    value = time_unit(unit)
    return results_pb2.TIME_UNIT_NANOSECONDS if value == results_pb2.TIME_UNIT_UNSPECIFIED else value
