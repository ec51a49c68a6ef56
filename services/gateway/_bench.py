"""``bench_dispatch``: no-op jobs through client → gateway → worker → client, timed.

Two figures: throughput of a burst (N jobs with C in flight) and the latency distribution of N
sequential round trips, each from SubmitJob until the result arrives on WatchJob.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping

import grpc
from workmesh.services.gateway.store import TERMINAL
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

_OPTIONS = (("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024))


class _Client:
    def __init__(self, stub: gateway_pb2_grpc.GatewayStub, workflow_type: str,
                 params: Mapping[str, common_pb2.ParamValue]) -> None:
        self.stub = stub
        self.request = gateway_pb2.SubmitJobRequest(workflow_type=workflow_type, params=params)
        self.failed = 0
        self.retried = 0

    async def round_trip(self) -> float:
        """Submit one job and follow it to its end; the seconds it took."""
        start = time.perf_counter()
        reply = await self.stub.SubmitJob(self.request)
        call = self.stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=reply.job.job_id,
                                                              after_seq=reply.job.last_seq))
        ok = False
        while True:
            event = await call.read()
            if event is grpc.aio.EOF:
                break
            if event.HasField("result"):
                ok = True
            elif event.HasField("status"):
                if event.status.status in TERMINAL:
                    ok = ok and event.status.status == common_pb2.JOB_STATUS_SUCCEEDED
                    break
                if event.status.status == common_pb2.JOB_STATUS_QUEUED:
                    self.retried += 1  # queued again: an attempt was lost
        elapsed = time.perf_counter() - start
        if not ok:
            self.failed += 1
        return elapsed


async def _wait_for_type(stub: gateway_pb2_grpc.GatewayStub, workflow_type: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        reply = await stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=5)
        if any(t.type.name == workflow_type and t.healthy_instances for t in reply.types):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no live instance of {workflow_type!r} at the gateway after {timeout}s")
        await asyncio.sleep(0.05)


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def bench_dispatch(gateway: str, jobs: int = 2000, concurrency: int = 64, *,
                         workflow_type: str = "echo", params: Mapping[str, common_pb2.ParamValue] | None = None,
                         warmup: int = 100, ready_timeout: float = 30.0) -> dict:
    """Measure dispatch throughput and latency against a running gateway.

    Args:
        gateway: ``host:port`` of the gateway.
        jobs: N, the jobs of the burst and the number of sequential round trips.
        concurrency: C, jobs in flight during the burst.
        workflow_type: a no-op type (``echo`` from ``workmesh.workers.examples.basic``).
        params: parameters of each job (default: none, the type's defaults).
        warmup: untimed round trips first (connections, caches).
        ready_timeout: seconds to wait for a live instance of the type.

    Returns:
        ``jobs``, ``concurrency``, ``burst_seconds``, ``burst_jobs_per_s``,
        ``sequential_jobs_per_s``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``mean_ms``, ``max_ms``,
        ``failed`` (jobs that did not succeed) and ``retried`` (attempts lost and run again).
    """
    if jobs < 1 or concurrency < 1:
        raise ValueError("bench_dispatch: jobs and concurrency must be >= 1")
    async with grpc.aio.insecure_channel(gateway, options=_OPTIONS) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await _wait_for_type(stub, workflow_type, ready_timeout)
        client = _Client(stub, workflow_type, params or {})
        for _ in range(warmup):
            await client.round_trip()
        client.failed = client.retried = 0

        remaining = jobs

        async def lane() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.round_trip()

        start = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(min(concurrency, jobs))))
        burst = time.perf_counter() - start

        latencies = sorted([await client.round_trip() for _ in range(jobs)])
    total = sum(latencies)
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "burst_seconds": round(burst, 4),
        "burst_jobs_per_s": round(jobs / burst, 1),
        "sequential_jobs_per_s": round(jobs / total, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 3),
        "p90_ms": round(_percentile(latencies, 0.90) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "failed": client.failed,
        "retried": client.retried,
    }
