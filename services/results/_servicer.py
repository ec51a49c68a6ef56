"""The Results gRPC servicer: validates requests and maps them onto a SeriesStore.

Acknowledgement (WriteSeries): the server gathers a call's chunks into batches of about
``batch_values`` values (or up to a request with ``flush``) and stores each batch all or nothing
(:meth:`SeriesStore.write`). After a batch is durable it sends a WriteSeriesResponse whose
``acked_chunks`` counts every chunk of the call stored so far. One batch is stored while the
next one is received; the call waits (and gRPC flow control holds the client) when both are
full. If the call breaks — client cancellation, an invalid chunk, a lost connection — the batch
being stored is cancelled and rolled back and buffered chunks are dropped: what was
acknowledged stays, nothing else does.

With authentication on (an ``access``), writes need the attempt's write capability and reads
follow the job rules (see :mod:`workmesh.services.results._access`); off, everything is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import numpy as np

from workmesh.services.clients._model import (
    Chunk,
    ReadQuery,
    SeriesKey,
    check_job_id,
    check_name,
    check_tags,
    decode_chunk,
    ns_per,
)
from workmesh.services.clients._wire import WRITE_ACCEPTED
from workmesh.services.core.auth import WriteGrant
from workmesh.services.core.errors import InvalidArgument, abort
from workmesh.services.results._access import SeriesAccess
from workmesh.services.results._local import LocalReads
from workmesh.services.results._read_messages import response_messages
from workmesh.services.results._readers import ReaderGrants
from workmesh.services.results.stores._tombstones import TombstonedStore
from workmesh.v1 import common_pb2, results_pb2, results_pb2_grpc

_AGGREGATES = {
    results_pb2.AGGREGATE_MEAN: "mean",
    results_pb2.AGGREGATE_MIN: "min",
    results_pb2.AGGREGATE_MAX: "max",
    results_pb2.AGGREGATE_LAST: "last",
}


class ResultsServicer(results_pb2_grpc.ResultsServicer):
    """Serves the Results API over one store; `access`: the rules with authentication on."""

    def __init__(
        self,
        store: TombstonedStore,
        *,
        batch_values: int = 8_000_000,
        compactor=None,
        access: SeriesAccess | None = None,
        readers: ReaderGrants | None = None,
        local: LocalReads | None = None,
    ) -> None:
        self.store = store
        self.batch_values = batch_values
        self.compactor = compactor  # told when a job's write calls begin and end (Parquet: compaction)
        self.access = access
        self.readers = readers or ReaderGrants(store, None, None)
        self.local = local  # Parquet files for callers on this host (ReadSeriesRequest.local)

    async def WriteSeries(
        self, request_iterator: AsyncIterator[results_pb2.WriteSeriesRequest], context: grpc.aio.ServicerContext
    ) -> None:
        call = _WriteCall(self.store, context)
        try:
            grant = self.access.grant(context) if self.access is not None else None
            await context.send_initial_metadata((WRITE_ACCEPTED,))  # the writer waits for it
            async for request in request_iterator:
                if request.HasField("chunk"):
                    chunk = decode_chunk(request.chunk, f"chunk[{call.received}]")
                    if call.received == 0:
                        await self._first_write(grant, chunk.key.job_id)
                    call.add(chunk)
                    if self.compactor is not None and call.received == 1:
                        self.compactor.begin(call.job_id)
                if request.flush:
                    await call.commit(wait=True)
                    await call.acknowledge()
                elif call.buffered >= self.batch_values:
                    await call.commit(wait=False)
            await call.commit(wait=True)
            await context.write(call.response(done=True))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            await call.cancel()
            await abort(context, exc)
        finally:
            await call.cancel()
            if self.compactor is not None and call.job_id:
                self.compactor.end(call.job_id)

    async def _first_write(self, grant: WriteGrant | None, job_id: str) -> None:
        if self.access is not None and grant is not None:
            await self.access.writing(grant, job_id)

    async def ReadSeries(
        self, request: results_pb2.ReadSeriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        # Streamed: the store hands over blocks of whole groups (one key from every job), so the
        # service holds a block, not every job of a comparison (see _read_messages).
        try:
            queries, unit = _queries(request)
            if self.access is not None:
                await self.access.readable(context, request.job_ids)
            if request.local and self.local is not None:
                answer = await self.local.answer(self.store, queries, unit)
                if answer is not None:
                    yield answer
                    return
            blocks = self.store.read_groups(queries)
            async with contextlib.aclosing(
                response_messages(blocks, request.job_ids, unit, packed=request.packed)
            ) as out:
                async for message in out:
                    yield message
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)

    async def ListSeries(
        self, request: results_pb2.ListSeriesRequest, context: grpc.aio.ServicerContext
    ) -> results_pb2.ListSeriesResponse:
        try:
            job_id = check_job_id(request.job_id)
            if self.access is not None:
                await self.access.readable(context, [job_id], "job_id")
            found = await self.store.list_series(job_id)
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)
        return results_pb2.ListSeriesResponse(series=[s.to_pb() for s in found])

    async def DeleteSeries(
        self, request: results_pb2.DeleteSeriesRequest, context: grpc.aio.ServicerContext
    ) -> results_pb2.DeleteSeriesResponse:
        try:
            job_id = check_job_id(request.job_id)
            if self.access is not None:
                self.access.deleting(context, job_id, restart=request.restart)
            count = await self.store.delete(job_id, restart=request.restart)
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)
        return results_pb2.DeleteSeriesResponse(series=count)

    async def GrantReader(
        self, request: results_pb2.GrantReaderRequest, context: grpc.aio.ServicerContext
    ) -> results_pb2.GrantReaderResponse:
        try:
            if self.access is not None:
                self.access.granting(context, check_job_id(request.job_id))
            return await self.readers.grant(request)
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)
            raise  # not reached: abort raises

    async def RevokeReader(
        self, request: results_pb2.RevokeReaderRequest, context: grpc.aio.ServicerContext
    ) -> results_pb2.RevokeReaderResponse:
        try:
            if self.access is not None:
                self.access.granting(context, check_job_id(request.job_id))
            return await self.readers.revoke(request)
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)
            raise  # not reached: abort raises


class _WriteCall:
    """The state of one WriteSeries call: buffer, the batch being stored, acknowledged counts."""

    def __init__(self, store: TombstonedStore, context: grpc.aio.ServicerContext) -> None:
        self.store = store
        self.context = context
        self.job_id = ""
        self.received = 0
        self.buffer: list[Chunk] = []
        self.buffered = 0
        self.pending: asyncio.Task | None = None
        self.acked_chunks = 0
        self.acked_values = 0
        self.last: dict[SeriesKey, int] = {}
        # (key, field) -> [count, unit] of the acknowledged data, for the SeriesRefs
        self.refs: dict[tuple[SeriesKey, str], list] = {}

    def add(self, chunk: Chunk) -> None:
        what = f"chunk[{self.received}]"
        if not self.job_id:
            self.job_id = chunk.key.job_id
        elif chunk.key.job_id != self.job_id:
            raise InvalidArgument(
                f"{what}.key.job_id", f"one WriteSeries call writes one job ({self.job_id!r}), got {chunk.key.job_id!r}"
            )
        self.received += 1
        if not len(chunk):  # every value was NaN: nothing to store
            return
        previous = self.last.get(chunk.key)
        first = int(chunk.timestamps[0])
        if previous is not None and first <= previous:
            rule = "duplicated" if first == previous else "out of order"
            raise InvalidArgument(
                f"{what}.timestamps",
                f"must be strictly increasing within a series; the first "
                f"timestamp {first} is {rule} after {previous}, the last of an earlier chunk",
            )
        self.last[chunk.key] = int(chunk.timestamps[-1])
        self.buffer.append(chunk)
        self.buffered += chunk.values

    async def commit(self, *, wait: bool) -> None:
        """Hand the buffer to the store after the previous batch is stored; with `wait`, until stored."""
        # self.pending stays set while awaited, so that cancel() can still roll it back
        if self.pending is not None:
            await self.pending
            self.pending = None
        if self.buffer:
            batch, self.buffer, self.buffered = self.buffer, [], 0
            self.pending = asyncio.create_task(self._store(batch, self.received))
        if wait and self.pending is not None:
            await self.pending
            self.pending = None

    async def _store(self, batch: list[Chunk], through: int) -> None:
        await self.store.write(batch)
        self.acked_chunks = through
        for chunk in batch:
            self.acked_values += chunk.values
            for name in chunk.fields:
                ref = self.refs.setdefault((chunk.key, name), [0, ""])
                ref[0] += len(chunk)
                ref[1] = chunk.units.get(name) or ref[1]
        await self.context.write(self.response(done=False))

    async def acknowledge(self) -> None:
        """Acknowledge chunks that needed no storing (all NaN) when nothing is pending."""
        if self.pending is None and not self.buffer and self.acked_chunks < self.received:
            self.acked_chunks = self.received
            await self.context.write(self.response(done=False))

    def response(self, *, done: bool) -> results_pb2.WriteSeriesResponse:
        refs = []
        if done:
            database = self.store.database(self.job_id) if self.job_id else ""
            refs = [
                common_pb2.SeriesRef(
                    store=self.store.kind,
                    host=self.store.host,
                    database=database,
                    measurement=key.measurement,
                    field=name,
                    tags=dict(key.tags),
                    count=count,
                    unit=unit,
                    job_id=self.job_id,
                )
                for (key, name), (count, unit) in sorted(self.refs.items())
            ]
        if done:  # everything received is stored by now (chunks of only NaN needed nothing)
            self.acked_chunks = self.received
        return results_pb2.WriteSeriesResponse(
            acked_chunks=self.acked_chunks, values=self.acked_values, done=done, series=refs
        )

    async def cancel(self) -> None:
        """Roll back the batch being stored and drop the buffer."""
        self.buffer, self.buffered = [], 0
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def _queries(request: results_pb2.ReadSeriesRequest) -> tuple[list[ReadQuery], int]:
    if not request.job_ids:
        raise InvalidArgument("job_ids", "at least one job id is required")
    if len(set(request.job_ids)) != len(request.job_ids):
        raise InvalidArgument("job_ids", "a job id is given twice")
    for i, job_id in enumerate(request.job_ids):
        check_job_id(job_id, f"job_ids[{i}]")
    if request.measurement:
        check_name("measurement", request.measurement)
    tags = check_tags(request.tags)
    for i, name in enumerate(request.fields):
        check_name(f"fields[{i}]", name)
    unit = request.time_unit or results_pb2.TIME_UNIT_NANOSECONDS
    scale = ns_per(unit)
    limit = np.iinfo(np.int64).max // scale
    bounds = {}
    for name in ("start", "end"):
        if request.HasField(name):
            value = getattr(request, name)
            if abs(value) > limit:
                raise InvalidArgument(name, "out of the int64 nanosecond range")
            bounds[name] = value * scale
    if request.window < 0:
        raise InvalidArgument("window", "must not be negative")
    aggregate = _AGGREGATES.get(request.aggregate, "")
    if request.window and not aggregate:
        raise InvalidArgument("aggregate", "is required with window (mean, min, max or last)")
    if aggregate and not request.window:
        raise InvalidArgument("window", "is required with aggregate")
    if request.window and request.window > limit:
        raise InvalidArgument("window", "out of the int64 nanosecond range")
    queries = [
        ReadQuery(
            job_id,
            request.measurement,
            tags,
            tuple(request.fields),
            bounds.get("start"),
            bounds.get("end"),
            request.window * scale,
            aggregate,
        )
        for job_id in request.job_ids
    ]
    return queries, unit
