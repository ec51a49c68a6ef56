"""``bench_http``: the HTTP API's job path against the gRPC unary path, and many SSE watchers.

1. Throughput and latency of ``POST /v1/jobs`` + ``GET /v1/jobs/{id}/events`` (SSE) to the
   terminal event, C jobs in flight, next to SubmitJob + WatchJob over gRPC in the same run
   (the same ``_measure`` loop and no-op ``echo`` jobs as ``workmesh bench dispatch``).
2. W SSE watchers spread over J running ``sleep`` jobs: events per second delivered to all
   watchers together, and the gateway's resident memory before and while they watch.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import grpc

from workmesh.services.bench._dispatch import GRPC_OPTIONS, _Client, _measure, wait_for_type
from workmesh.services.core.limits import TERMINAL_NAMES
from workmesh.v1 import gateway_pb2_grpc


class _HttpClient:
    """POST the job, then follow its event stream from the seq the POST returned."""

    def __init__(self, session: aiohttp.ClientSession, base: str, body: dict) -> None:
        self.session = session
        self.base = base
        self.body = json.dumps(body)
        self.failed = 0
        self.retried = 0

    async def round_trip(self) -> float:
        start = time.perf_counter()
        async with self.session.post(
            f"{self.base}/v1/jobs", data=self.body, headers={"Content-Type": "application/json"}
        ) as reply:
            job = (await reply.json())["job"]
        ok = False
        async with self.session.get(
            f"{self.base}/v1/jobs/{job['jobId']}/events", params={"after_seq": job["lastSeq"]}
        ) as stream:
            async for line in stream.content:
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                if "result" in event:
                    ok = True
                status = event.get("status", {}).get("status")
                if status in TERMINAL_NAMES:
                    ok = ok and status == "JOB_STATUS_SUCCEEDED"
                    break
                if status == "JOB_STATUS_QUEUED":
                    self.retried += 1
        if not ok:
            self.failed += 1
        return time.perf_counter() - start


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _watch(
    session: aiohttp.ClientSession, url: str, counter: list[int], ready: asyncio.Event, connected: list[int], total: int
) -> None:
    async with session.get(url) as stream:
        connected[0] += 1
        if connected[0] == total:
            ready.set()
        async for line in stream.content:
            if line.startswith(b"data: "):
                counter[0] += 1


async def bench_http(
    http: str,
    gateway: str,
    gateway_pid: int | None = None,
    *,
    jobs: int = 2000,
    concurrency: int = 64,
    warmup: int = 100,
    watchers: int = 500,
    watched_jobs: int = 100,
    watch_seconds: float = 10.0,
) -> dict:
    """Measure the HTTP job path against gRPC unary, then `watchers` SSE streams.

    Args:
        http: base URL of the gateway's HTTP server, e.g. ``http://127.0.0.1:8080``.
        gateway: ``host:port`` of the same gateway's gRPC server.
        gateway_pid: the gateway's process id, for its RSS (None: not reported).
        jobs, concurrency, warmup: as for ``bench_dispatch``, per path.
        watchers, watched_jobs: SSE streams, spread evenly over this many running sleep jobs.
        watch_seconds: how long the events delivered are counted.
    """
    figures: dict = {"jobs": jobs, "concurrency": concurrency}
    base = http.rstrip("/")
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with (
        grpc.aio.insecure_channel(gateway, options=GRPC_OPTIONS) as channel,
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
    ):
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await wait_for_type(stub, "echo", 30.0)
        figures.update(await _measure(_Client(stub, "echo", {}), jobs, concurrency, warmup, "grpc_unary_"))
        figures.update(
            await _measure(_HttpClient(session, base, {"workflowType": "echo"}), jobs, concurrency, warmup, "http_")
        )
        figures["http_vs_grpc_unary_burst"] = round(
            figures["http_burst_jobs_per_s"] / figures["grpc_unary_burst_jobs_per_s"], 3
        )

        # Many watchers: long sleep jobs reporting progress often.
        duration = watch_seconds * 3 + 30
        steps = int(duration * 10)  # ten progress events per second per job
        body = {
            "workflowType": "sleep",
            "params": {"seconds": {"floatValue": duration}, "steps": {"intValue": str(steps)}},
        }
        ids = []
        for _ in range(watched_jobs):
            async with session.post(f"{base}/v1/jobs", json=body) as reply:
                ids.append((await reply.json())["job"]["jobId"])
        figures["watch_rss_before_kib"] = rss_kib(gateway_pid) if gateway_pid else None
        counter, connected, ready = [0], [0], asyncio.Event()
        tasks = [
            asyncio.create_task(
                _watch(session, f"{base}/v1/jobs/{ids[i % len(ids)]}/events", counter, ready, connected, watchers)
            )
            for i in range(watchers)
        ]
        try:
            await asyncio.wait_for(ready.wait(), 60)
            await asyncio.sleep(1.0)  # replays of the events so far are not the steady rate
            start_count, start = counter[0], time.perf_counter()
            await asyncio.sleep(watch_seconds)
            delivered, elapsed = counter[0] - start_count, time.perf_counter() - start
            figures.update(
                watchers=watchers,
                watched_jobs=watched_jobs,
                watch_events_per_s=round(delivered / elapsed, 1),
                watch_events_per_s_per_watcher=round(delivered / elapsed / watchers, 2),
                watch_rss_during_kib=rss_kib(gateway_pid) if gateway_pid else None,
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for job_id in ids:
                async with session.post(f"{base}/v1/jobs/{job_id}:cancel", json={}) as reply:
                    await reply.read()
    return figures
