"""Cost of the telemetry calls on the dispatch path, tracing off (default) vs recording.

With tracing off the factories return no interceptors; the RPC line forces them (always=True) to
show what they would cost.

Run: ``python -m tests.telemetry.bench_overhead``. Prints µs per call; not a test (no timing asserts).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workmesh.services.core.telemetry import (
    GatewayMetrics,
    TelemetryConfig,
    _tracing,
    client_interceptors,
    configure_telemetry,
    inject_context,
    job_span,
    server_interceptors,
    trace_metadata,
)

N = 20_000


def per_call(fn, n: int = N) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def span_once() -> None:
    with job_span("job.dispatch", job_id="j", workflow_type="t", attempt=1, instance="w"):
        pass


async def rpc_costs(rounds: int = 6, n: int = 1000) -> tuple[float, float]:
    """Median µs per unary RPC, plain vs traced (client + server interceptors), rounds interleaved
    so that load from other processes hits both alike."""
    servers, stubs, channels = [], [], []
    for traced in (False, True):
        # Health Check is excluded from tracing by default; exclude=() traces it for this measure.
        server = grpc.aio.server(interceptors=server_interceptors(exclude=(), always=True) if traced else None)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=client_interceptors(always=True) if traced else None
        )
        servers.append(server)
        channels.append(channel)
        stubs.append(health_pb2_grpc.HealthStub(channel))
    timings: list[list[float]] = [[], []]
    for _ in range(rounds):
        for which, stub in enumerate(stubs):
            start = time.perf_counter()
            for _ in range(n):
                await stub.Check(health_pb2.HealthCheckRequest())
            timings[which].append((time.perf_counter() - start) / n * 1e6)
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)
    plain, traced = (sorted(t[1:])[len(t[1:]) // 2] for t in timings)  # first round: warm-up
    return plain, traced


def report(mode: str) -> None:
    metrics = GatewayMetrics()
    print(f"[{mode}]")
    print(f"  job_span enter+exit        {per_call(span_once):6.1f} µs")
    with job_span("job.submit", job_id="j"):
        print(f"  inject_context             {per_call(inject_context):6.1f} µs")
        print(f"  trace_metadata             {per_call(trace_metadata):6.1f} µs")
    print(f"  metrics.job_transition     {per_call(lambda: metrics.job_transition(1, 't')):6.1f} µs")
    plain, traced = asyncio.run(rpc_costs())
    print(f"  unary RPC plain / with interceptors {plain:6.1f} / {traced:6.1f} µs  (+{traced - plain:.1f} µs)")


if __name__ == "__main__":
    configure_telemetry("bench", config=TelemetryConfig("bench", "b1"))
    report("tracing off (no exporter)")
    configure_telemetry("bench", config=TelemetryConfig("bench", "b1"), span_exporter=InMemorySpanExporter())
    report("recording (in-memory exporter)")
    _tracing.reset_tracing_for_tests()
