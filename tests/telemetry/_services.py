"""Two small grpc.aio services on the workmesh protos, the first calling the second from its handlers.

"worker" (Worker.Describe unary, Worker.Execute server-stream) calls "results" (Results.ListSeries
unary, Results.WriteSeries bidi-stream, Results.ReadSeries server-stream written with
context.write, and a raw bytes client-stream Concat). Every handler records the trace/span ids it runs
under and logs a line, so tests can compare them with the exported spans.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc

from workmesh.services.core.telemetry import (
    client_interceptors,
    current_span_id,
    current_trace_id,
    get_logger,
    job_span,
    rpc_parent,
    server_interceptors,
    trace_metadata,
)
from workmesh.v1 import results_pb2, results_pb2_grpc, worker_pb2, worker_pb2_grpc

CONCAT_METHOD = "/workmesh.test.Bytes/Concat"
log = get_logger("tests.telemetry.services")


@dataclass
class Seen:
    """(method, trace_id, span_id) as observed inside handlers, in order."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, method: str) -> None:
        self.calls.append((method, current_trace_id(), current_span_id()))
        log.info("handled", method=method)


class ResultsServicer(results_pb2_grpc.ResultsServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def _record(self, method: str, context) -> None:  # noqa: ANN001
        # With interceptors off there is no server span: run under the caller's context instead.
        parent = rpc_parent(context)
        if parent is None:
            self.seen.record(method)
        else:
            with job_span(f"results.{method}", job_id="-", parent=parent, bind_logs=False):
                self.seen.record(method)

    async def ListSeries(self, request, context):  # noqa: N802, ANN001
        self.seen.record("ListSeries")
        if dict(context.invocation_metadata() or ()).get("x-job-id") == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "job_id: no such job")
        return results_pb2.ListSeriesResponse()

    async def WriteSeries(self, request_iterator, context):  # noqa: N802, ANN001
        # Bidirectional stream (one reply per request), async-generator style. Messages stay empty:
        # these tests are about the calls, not about the results contract's fields.
        await self._record("WriteSeries", context)
        async for _ in request_iterator:
            yield results_pb2.WriteSeriesResponse()

    async def ReadSeries(self, request, context):  # noqa: N802, ANN001
        # Coroutine style (context.write) on purpose: the interceptor must handle both styles.
        await self._record("ReadSeries", context)
        for _ in range(3):
            await context.write(results_pb2.ReadSeriesResponse())


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    def __init__(self, seen: Seen, results_address: str) -> None:
        self.seen = seen
        self.results_address = results_address

    def _channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.results_address, interceptors=client_interceptors("worker"))

    async def Describe(self, request, context):  # noqa: N802, ANN001
        self.seen.record("Describe")
        async with self._channel() as channel:
            # The caller's x-job-id is passed on; "missing" makes the callee answer NOT_FOUND.
            job_id = dict(context.invocation_metadata() or ()).get("x-job-id", "j")
            try:
                await results_pb2_grpc.ResultsStub(channel).ListSeries(
                    results_pb2.ListSeriesRequest(), metadata=(("x-job-id", job_id),)
                )
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details())
        return worker_pb2.DescribeResponse()

    async def Execute(self, request, context) -> AsyncIterator[worker_pb2.WorkerEvent]:  # noqa: N802, ANN001
        # As the worker SDK does: the job's span under the server span, or, with interceptors off,
        # under the caller's context from the metadata.
        with job_span(
            "job.execute", job_id=request.job_id, attempt=request.attempt or None, parent=rpc_parent(context)
        ):
            self.seen.record("Execute")
            async with self._channel() as channel:
                stub = results_pb2_grpc.ResultsStub(channel)

                async def chunks():
                    for _ in range(4):
                        yield results_pb2.WriteSeriesRequest()

                acks = [ack async for ack in stub.WriteSeries(chunks(), metadata=trace_metadata())]
                yield worker_pb2.WorkerEvent(seq=len(acks))
                seq = 10
                async for _ in stub.ReadSeries(results_pb2.ReadSeriesRequest(), metadata=trace_metadata()):
                    seq += 1
                    yield worker_pb2.WorkerEvent(seq=seq)


def _concat_handler(seen: Seen) -> grpc.GenericRpcHandler:
    # The workmesh protos have no client-stream/unary-response RPC: a raw bytes one stands in.
    async def concat(request_iterator, context):  # noqa: ANN001
        seen.record("Concat")
        return b"".join([message async for message in request_iterator])

    handler = grpc.stream_unary_rpc_method_handler(concat)  # bytes in, bytes out
    return grpc.method_handlers_generic_handler("workmesh.test.Bytes", {"Concat": handler})


async def start_server(name: str, register) -> tuple[grpc.aio.Server, str]:  # noqa: ANN001
    server = grpc.aio.server(interceptors=server_interceptors(name))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def two_services() -> AsyncIterator[tuple[str, str, Seen]]:
    """Start "results" and "worker" (which calls results); yield their addresses and what handlers saw."""
    seen = Seen()

    def register_results(server: grpc.aio.Server) -> None:
        results_pb2_grpc.add_ResultsServicer_to_server(ResultsServicer(seen), server)
        server.add_generic_rpc_handlers((_concat_handler(seen),))

    results, results_address = await start_server("results", register_results)
    worker, worker_address = await start_server(
        "worker",
        lambda server: worker_pb2_grpc.add_WorkerServicer_to_server(WorkerServicer(seen, results_address), server),
    )
    try:
        yield worker_address, results_address, seen
    finally:
        await worker.stop(None)
        await results.stop(None)
