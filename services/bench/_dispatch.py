"""``bench_dispatch``: no-op jobs through client → gateway → worker → client, timed.

Two figures per client path: throughput of a burst (N jobs with C in flight) and the latency
distribution of N sequential round trips. The ``unary`` path submits each job with SubmitJob
and follows it with WatchJob (two RPCs per job, one event per message); ``unary_batch`` is the
same pair with ``WatchJobRequest.batch`` (the events ready together in one message); the
``stream`` path runs all jobs over one RunJobs stream. Each round trip is timed from sending
the job until its terminal event arrives.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import grpc

from workmesh.services.core.limits import TERMINAL, message_options
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

GRPC_OPTIONS = tuple(message_options())
Metadata = tuple[tuple[str, str], ...]


class _Client:
    """The unary path: SubmitJob, then WatchJob until the terminal event (with `batch`, the
    events ready together come in one message, ``WatchJobRequest.batch``)."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        workflow_type: str,
        params: Mapping[str, common_pb2.ParamValue],
        metadata: Metadata = (),
        batch: bool = False,
    ) -> None:
        self.stub = stub
        self.metadata = metadata
        self.batch = batch
        self.request = gateway_pb2.SubmitJobRequest(workflow_type=workflow_type, params=params)
        self.failed = 0
        self.retried = 0

    async def round_trip(self) -> float:
        """Submit one job and follow it to its end; the seconds it took."""
        start = time.perf_counter()
        reply = await self.stub.SubmitJob(self.request, metadata=self.metadata)
        call = self.stub.WatchJob(
            gateway_pb2.WatchJobRequest(job_id=reply.job.job_id, after_seq=reply.job.last_seq, batch=self.batch),
            metadata=self.metadata,
        )
        ok = ended = False
        while not ended:
            message = await call.read()
            if message is grpc.aio.EOF:
                break
            for event in message.batch or (message,):
                if event.HasField("result"):
                    ok = True
                elif event.HasField("status"):
                    if event.status.status in TERMINAL:
                        ok = ok and event.status.status == common_pb2.JOB_STATUS_SUCCEEDED
                        ended = True
                        break
                    if event.status.status == common_pb2.JOB_STATUS_QUEUED:
                        self.retried += 1  # queued again: an attempt was lost
        elapsed = time.perf_counter() - start
        if not ok:
            self.failed += 1
        return elapsed


async def wait_for_type(
    stub: gateway_pb2_grpc.GatewayStub, workflow_type: str, timeout: float, metadata: Metadata = ()
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        reply = await stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=5, metadata=metadata)
        if any(t.type.name == workflow_type and t.healthy_instances for t in reply.types):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no live instance of {workflow_type!r} at the gateway after {timeout}s")
        await asyncio.sleep(0.05)


class _StreamClient:
    """The stream path: jobs as items of one RunJobs stream, sent and received in batches."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        workflow_type: str,
        params: Mapping[str, common_pb2.ParamValue],
        metadata: Metadata = (),
    ) -> None:
        self.job = gateway_pb2.SubmitJobRequest(workflow_type=workflow_type, params=params)
        self.failed = 0
        self.retried = 0
        self._call = stub.RunJobs(metadata=metadata)
        self._next = 0
        self._waiting: dict[str, list] = {}  # ref -> [future, succeeded]
        self._outbox: list[gateway_pb2.RunJobsItem] = []
        self._wake: asyncio.Future[None] | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write())
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def round_trip(self) -> float:
        """Send one job and wait for its terminal event; the seconds it took."""
        self._next += 1
        ref = str(self._next)
        future = asyncio.get_running_loop().create_future()
        self._waiting[ref] = [future, False]
        start = time.perf_counter()
        self._outbox.append(gateway_pb2.RunJobsItem(ref=ref, job=self.job))
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        await future
        return time.perf_counter() - start

    async def _write(self) -> None:
        while True:
            if not self._outbox:
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake
                continue
            batch, self._outbox = self._outbox, []
            await self._call.write(gateway_pb2.RunJobsRequest(jobs=batch))

    async def _read(self) -> None:
        try:
            while True:
                reply = await self._call.read()
                if reply is grpc.aio.EOF:
                    raise RuntimeError("the gateway ended the RunJobs stream early")
                for update in reply.updates:
                    kind = update.WhichOneof("kind")
                    if kind == "event":
                        event = update.event
                        if event.HasField("result"):
                            self._waiting[update.ref][1] = True
                        elif event.HasField("status"):
                            status = event.status.status
                            if status in TERMINAL:
                                self._end(update.ref, status == common_pb2.JOB_STATUS_SUCCEEDED)
                            elif status == common_pb2.JOB_STATUS_QUEUED:
                                self.retried += 1
                    elif kind == "error":
                        self._end(update.ref, False)
        except BaseException as exc:
            for future, _ in self._waiting.values():
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stream closed"))
            raise

    def _end(self, ref: str, ok: bool) -> None:
        future, result = self._waiting.pop(ref)
        if not (ok and result):
            self.failed += 1
        future.set_result(None)

    async def close(self) -> None:
        self._writer.cancel()
        self._reader.cancel()
        self._call.cancel()
        await asyncio.gather(self._writer, self._reader, return_exceptions=True)


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _measure(client, jobs: int, concurrency: int, warmup: int, prefix: str) -> dict:
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
        f"{prefix}burst_seconds": round(burst, 4),
        f"{prefix}burst_jobs_per_s": round(jobs / burst, 1),
        f"{prefix}sequential_jobs_per_s": round(jobs / total, 1),
        f"{prefix}p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        f"{prefix}p90_ms": round(percentile(latencies, 0.90) * 1000, 3),
        f"{prefix}p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        f"{prefix}mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        f"{prefix}max_ms": round(latencies[-1] * 1000, 3),
        f"{prefix}failed": client.failed,
        f"{prefix}retried": client.retried,
    }


PATHS = ("unary", "unary_batch", "stream")


async def bench_dispatch(
    gateway: str,
    jobs: int = 2000,
    concurrency: int = 64,
    *,
    workflow_type: str = "echo",
    params: Mapping[str, common_pb2.ParamValue] | None = None,
    warmup: int = 100,
    ready_timeout: float = 30.0,
    paths: tuple[str, ...] = PATHS,
    ca_file: str = "",
    token: str = "",
) -> dict:
    """Measure dispatch throughput and latency against a running gateway, per client path.

    Args:
        gateway: ``host:port`` of the gateway.
        jobs: N, the jobs of the burst and the number of sequential round trips (per path).
        concurrency: C, jobs in flight during the burst.
        workflow_type: a no-op type (``echo`` from ``workmesh.workers.examples.basic``).
        params: parameters of each job (default: none, the type's defaults).
        warmup: untimed round trips first (connections, caches), per path.
        ready_timeout: seconds to wait for a live instance of the type.
        paths: which client paths to measure: ``"unary"`` (SubmitJob + WatchJob per job, one
            event per message), ``"unary_batch"`` (the same with ``WatchJobRequest.batch``)
            and/or ``"stream"`` (all jobs over one RunJobs stream).
        ca_file: call the gateway over TLS, verified against this CA (empty: plaintext).
        token: the bearer token sent with every call (a gateway with authentication on); sent
            as call metadata, as a client's interceptor would add it.

    Returns:
        ``jobs``, ``concurrency`` and, for each path P measured (``unary_`` / ``unary_batch_``
        / ``stream_`` prefix): ``P_burst_seconds``, ``P_burst_jobs_per_s``, ``P_sequential_jobs_per_s``,
        ``P_p50_ms``, ``P_p90_ms``, ``P_p99_ms``, ``P_mean_ms``, ``P_max_ms``, ``P_failed``
        (jobs that did not succeed) and ``P_retried`` (attempts lost and run again).
    """
    if jobs < 1 or concurrency < 1:
        raise ValueError("bench_dispatch: jobs and concurrency must be >= 1")
    unknown = sorted(set(paths) - set(PATHS))
    if not paths or unknown:
        raise ValueError(f"bench_dispatch: paths must be a non-empty subset of {PATHS}, got {tuple(paths)}")
    figures: dict = {"jobs": jobs, "concurrency": concurrency}
    metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else ()
    channel = (
        grpc.aio.secure_channel(gateway, grpc.ssl_channel_credentials(Path(ca_file).read_bytes()), options=GRPC_OPTIONS)
        if ca_file
        else grpc.aio.insecure_channel(gateway, options=GRPC_OPTIONS)
    )
    async with channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await wait_for_type(stub, workflow_type, ready_timeout, metadata)
        for path, batch in (("unary", False), ("unary_batch", True)):
            if path in paths:
                client = _Client(stub, workflow_type, params or {}, metadata, batch=batch)
                figures.update(await _measure(client, jobs, concurrency, warmup, f"{path}_"))
        if "stream" in paths:
            stream = _StreamClient(stub, workflow_type, params or {}, metadata)
            try:
                figures.update(await _measure(stream, jobs, concurrency, warmup, "stream_"))
            finally:
                await stream.close()
    return figures
