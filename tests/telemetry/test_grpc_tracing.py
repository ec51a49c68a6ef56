"""Trace context across real gRPC calls: test client -> "worker" server -> "results" server."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.support import eventually_async, run
from tests.telemetry._services import CONCAT_METHOD, two_services
from workmesh.services.core.telemetry import (
    ATTR_JOB_ID,
    ATTR_SERVICE,
    client_interceptors,
    current_trace_id,
    end_span,
    job_span,
    server_interceptors,
    start_job_span,
    trace_metadata,
    use_span,
)
from workmesh.v1 import worker_pb2, worker_pb2_grpc


def by_name(spans: tuple[ReadableSpan, ...], name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, f"{name} {kind}: {[(s.name, s.kind) for s in spans]}"
    return found[0]


def assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent is not None and child.parent.span_id == parent.context.span_id, (
        f"{child.name} should be a child of {parent.name}"
    )


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


def test_unary_call_chain_is_one_trace(captured):
    async def scenario():
        async with two_services() as (worker_address, _, seen):
            async with grpc.aio.insecure_channel(
                worker_address, interceptors=client_interceptors("gateway")
            ) as channel:
                with job_span("job.dispatch", job_id="job-1", workflow_type="demo", attempt=1):
                    await worker_pb2_grpc.WorkerStub(channel).Describe(worker_pb2.DescribeRequest())
            return seen

    seen = run(scenario())
    spans = captured.spans.get_finished_spans()
    dispatch = by_name(spans, "job.dispatch", SpanKind.INTERNAL)
    describe_client = by_name(spans, "workmesh.v1.Worker/Describe", SpanKind.CLIENT)
    describe_server = by_name(spans, "workmesh.v1.Worker/Describe", SpanKind.SERVER)
    list_client = by_name(spans, "workmesh.v1.Results/ListSeries", SpanKind.CLIENT)
    list_server = by_name(spans, "workmesh.v1.Results/ListSeries", SpanKind.SERVER)
    assert dispatch.attributes[ATTR_JOB_ID] == "job-1"
    assert_child(describe_client, dispatch)
    assert_child(describe_server, describe_client)
    assert_child(list_client, describe_server)
    assert_child(list_server, list_client)
    assert describe_server.attributes[ATTR_SERVICE] == "worker"
    assert list_server.attributes[ATTR_SERVICE] == "results"
    assert list_client.attributes[ATTR_SERVICE] == "worker"
    assert list_server.attributes["rpc.grpc.status_code"] == 0
    # Inside the handlers, the server span is the current span.
    assert seen.calls == [("Describe", *hex_ids(describe_server)), ("ListSeries", *hex_ids(list_server))]


def test_streaming_calls_carry_the_trace(captured):
    async def scenario():
        async with two_services() as (worker_address, results_address, seen):
            async with grpc.aio.insecure_channel(
                worker_address, interceptors=client_interceptors("gateway")
            ) as channel:
                with job_span("job.dispatch", job_id="job-2", attempt=1):
                    call = worker_pb2_grpc.WorkerStub(channel).Execute(worker_pb2.ExecuteRequest(job_id="job-2"))
                    # The interceptor hands back the real call: read() and code() work.
                    first = await call.read()
                    rest = [event.seq async for event in call]
                    code = await call.code()
            async with grpc.aio.insecure_channel(
                results_address, interceptors=client_interceptors("gateway")
            ) as channel:
                with job_span("concat", job_id="job-2"):
                    concat = channel.stream_unary(CONCAT_METHOD)
                    joined = await concat(iter([b"a", b"b"]))
            return seen, first.seq, rest, code, joined

    seen, first, rest, code, joined = run(scenario())
    assert (first, rest, code, joined) == (4, [11, 12, 13], grpc.StatusCode.OK, b"ab")

    spans = captured.spans.get_finished_spans()
    dispatch = by_name(spans, "job.dispatch", SpanKind.INTERNAL)
    execute_client = by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.CLIENT)
    execute_server = by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.SERVER)
    execute_job = by_name(spans, "job.execute", SpanKind.INTERNAL)
    assert_child(execute_client, dispatch)
    assert_child(execute_server, execute_client)
    assert_child(execute_job, execute_server)  # rpc_parent: the server span when there is one
    for method in ("WriteSeries", "ReadSeries"):  # bidi-stream, and server-stream via context.write
        client = by_name(spans, f"workmesh.v1.Results/{method}", SpanKind.CLIENT)
        server = by_name(spans, f"workmesh.v1.Results/{method}", SpanKind.SERVER)
        # The explicit trace_metadata() was replaced by the interceptor's: parent is the client span.
        assert_child(client, execute_job)
        assert_child(server, client)
        assert server.attributes["rpc.grpc.status_code"] == 0
    concat_client = by_name(spans, "workmesh.test.Bytes/Concat", SpanKind.CLIENT)  # client-stream
    assert_child(concat_client, by_name(spans, "concat", SpanKind.INTERNAL))
    assert_child(by_name(spans, "workmesh.test.Bytes/Concat", SpanKind.SERVER), concat_client)
    # The streaming server span lasts the whole stream: it ends after the nested calls it made.
    read_server = by_name(spans, "workmesh.v1.Results/ReadSeries", SpanKind.SERVER)
    assert execute_server.end_time >= read_server.end_time
    assert ("Execute", *hex_ids(execute_job)) in seen.calls


def test_error_status_is_recorded_on_both_sides(captured):
    async def scenario():
        async with (
            two_services() as (worker_address, _, _seen),
            grpc.aio.insecure_channel(worker_address, interceptors=client_interceptors("gateway")) as channel,
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await worker_pb2_grpc.WorkerStub(channel).Describe(
                    worker_pb2.DescribeRequest(), metadata=(("x-job-id", "missing"),)
                )
            return caught.value.code()

    assert run(scenario()) is grpc.StatusCode.NOT_FOUND
    spans = captured.spans.get_finished_spans()
    for name in ("workmesh.v1.Results/ListSeries", "workmesh.v1.Worker/Describe"):
        for kind in (SpanKind.CLIENT, SpanKind.SERVER):
            span = by_name(spans, name, kind)
            assert span.status.status_code is StatusCode.ERROR, (name, kind)
            assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_health_checks_are_not_traced(captured):
    async def scenario():
        async with two_services() as (worker_address, _, _seen), grpc.aio.insecure_channel(worker_address) as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            return response.status

    assert run(scenario()) == health_pb2.HealthCheckResponse.SERVING
    assert not [s for s in captured.spans.get_finished_spans() if "Health" in s.name]


def test_tracing_off_no_interceptors_yet_ids_cross_processes():
    """No exporter: no interceptors (grpc.aio's machinery costs even when idle), nothing recorded,
    yet with trace_metadata()/rpc_parent() the callee's job runs under the caller's trace id, so
    log lines of one job correlate across processes."""
    assert server_interceptors() == [] and client_interceptors() == []
    assert len(server_interceptors(always=True)) == 1

    async def scenario():
        async with two_services() as (worker_address, _, seen):
            async with grpc.aio.insecure_channel(worker_address, interceptors=client_interceptors()) as channel:
                with job_span("job.dispatch", job_id="job-3") as span:
                    assert not span.is_recording()
                    caller_trace = current_trace_id()
                    call = worker_pb2_grpc.WorkerStub(channel).Execute(
                        worker_pb2.ExecuteRequest(job_id="job-3"), metadata=trace_metadata()
                    )
                    events = [event.seq async for event in call]
            return caller_trace, seen, events

    caller_trace, seen, events = run(scenario())
    assert events == [4, 11, 12, 13]
    assert len(caller_trace) == 32
    # Execute (worker) and WriteSeries/ReadSeries (results, called by the worker) share the trace.
    assert [(method, trace_id) for method, trace_id, _ in seen.calls] == [
        ("Execute", caller_trace),
        ("WriteSeries", caller_trace),
        ("ReadSeries", caller_trace),
    ]


def test_cancelled_stream_ends_both_spans(captured):
    started = asyncio.Event()

    class Slow(worker_pb2_grpc.WorkerServicer):
        async def Execute(self, request, context):  # noqa: N802, ANN001
            yield worker_pb2.WorkerEvent(seq=1)
            started.set()
            await asyncio.sleep(60)  # cancelled by the client long before
            yield worker_pb2.WorkerEvent(seq=2)

    async def scenario():
        server = grpc.aio.server(interceptors=server_interceptors("worker"))
        worker_pb2_grpc.add_WorkerServicer_to_server(Slow(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", interceptors=client_interceptors("gateway")
            ) as channel:
                call = worker_pb2_grpc.WorkerStub(channel).Execute(worker_pb2.ExecuteRequest(job_id="j"))
                assert (await call.read()).seq == 1
                await started.wait()
                call.cancel()

                async def both_ended():
                    names = [(s.name, s.kind) for s in captured.spans.get_finished_spans()]
                    return (
                        names.count(("workmesh.v1.Worker/Execute", SpanKind.SERVER)) == 1
                        and names.count(("workmesh.v1.Worker/Execute", SpanKind.CLIENT)) == 1
                    )

                await eventually_async(both_ended)
        finally:
            await server.stop(None)

    run(scenario())
    spans = captured.spans.get_finished_spans()
    server_span = by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.SERVER)
    client_span = by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.CLIENT)
    assert_child(server_span, client_span)
    assert server_span.attributes.get("rpc.cancelled") is True
    assert client_span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert "Failed to detach context" not in captured.logs.getvalue()


def test_call_started_under_a_span_keeps_it_after_the_block(captured):
    """The gateway starts Execute under the attempt span and reads the stream elsewhere later."""

    async def scenario():
        async with (
            two_services() as (worker_address, _, _seen),
            grpc.aio.insecure_channel(worker_address, interceptors=client_interceptors("gateway")) as channel,
        ):
            attempt = start_job_span("job.attempt", job_id="j-10", attempt=1)
            with use_span(attempt):
                call = worker_pb2_grpc.WorkerStub(channel).Execute(worker_pb2.ExecuteRequest(job_id="j-10"))
            events = [event.seq async for event in call]  # outside the block
            end_span(attempt)
            return events

    assert run(scenario()) == [4, 11, 12, 13]
    spans = captured.spans.get_finished_spans()
    execute_client = by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.CLIENT)
    assert_child(execute_client, by_name(spans, "job.attempt", SpanKind.INTERNAL))
    assert_child(by_name(spans, "workmesh.v1.Worker/Execute", SpanKind.SERVER), execute_client)
