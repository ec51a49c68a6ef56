"""``bench_progress``: progress events through worker → gateway (stored) → watching clients, timed.

Two figures. **Single stream**: one job sends `events` progress events as fast as its worker
can and one client follows it (WatchJob one event per message, WatchJob with
``WatchJobRequest.batch``, and RunJobs); events per second from the first event
the client receives to the terminal one, with every event checked to arrive once, in order,
numbered without gaps. **Fan-out**: `jobs` jobs send progress at `rate` per second each for
`seconds`, and `watchers` WatchJob streams (with ``batch`` unless asked otherwise) spread evenly
over them measure each event's lag from the moment the worker sent it (its message carries the
send time; one clock, one machine) to its arrival, while the gateway's resident memory and the
CPU time of gateway, client and worker are sampled (which of the three runs out of CPU first).
Live events only: a watcher counts as subscribed once its first event (the replay of the job's
start) arrived, and events sent before that reach it as replay and are not counted as lag; how
long the subscription itself took (call to first event) is reported apart (``subscribe_*``), and
so is the lag's p99 per second of the run (``lag_p99_by_second_ms``: a backlog at the start
shows there, a throughput shortfall as a rising line). ``stored_lag_*`` is the part of the lag
up to the event's time, which the gateway stamps when it stores the event (the worker's send,
the gateway's ingest and commit), ``delivered_lag_*`` the rest, from there to the watcher (the
fan-out: feed, gRPC send, the client's receive). The fan-out runs twice: watchers that take
every event (``fanout_*``), then watchers that ask for the newest progress only
(``WatchJobRequest.latest_progress``, ``fanout_latest_*``: a watcher that falls behind skips
superseded progress events; ``skipped`` counts them, and such a watcher is incomplete only if it
misses the job's last progress event or its end). The worker is ``progress-load`` from
:mod:`workmesh.workers.examples.loadgen`, with progress coalescing off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc

from workmesh.services.bench._dispatch import GRPC_OPTIONS, percentile, wait_for_type
from workmesh.services.core.limits import TERMINAL
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

WORKFLOW = "progress-load"


def _request(events: int, rate: float) -> gateway_pb2.SubmitJobRequest:
    return gateway_pb2.SubmitJobRequest(
        workflow_type=WORKFLOW,
        params={"events": common_pb2.ParamValue(int_value=events), "rate": common_pb2.ParamValue(float_value=rate)},
    )


class _Tally:
    """What one client saw of one job: progress count, first/last arrival, gaps, the end."""

    def __init__(self) -> None:
        self.progress = 0
        self.first = 0.0
        self.last_seq = 0
        self.gaps = 0
        self.skipped = 0
        self.status = 0
        self.fraction = 0.0

    def see(self, event: common_pb2.JobEvent) -> bool:
        """Count one event; True at the terminal one."""
        if event.seq != self.last_seq + 1:
            self.gaps += 1
            self.skipped += max(0, event.seq - self.last_seq - 1)
        self.last_seq = event.seq
        if event.HasField("progress"):
            if not self.progress:
                self.first = time.perf_counter()
            self.progress += 1
            self.fraction = event.progress.fraction
        elif event.HasField("status") and event.status.status in TERMINAL:
            self.status = event.status.status
            return True
        return False


def _events(message: common_pb2.JobEvent, batch: bool):
    """The events of one WatchJob message (a batch stream's messages hold them in `batch`)."""
    return message.batch if batch else (message,)


async def _watch_one(stub: gateway_pb2_grpc.GatewayStub, events: int, batch: bool = False) -> dict:
    reply = await stub.SubmitJob(_request(events, 0.0))
    tally = _Tally()
    call = stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=reply.job.job_id, batch=batch))
    async for message in call:
        if any(tally.see(event) for event in _events(message, batch)):
            break
    return _single(tally, events, time.perf_counter())


async def _watch_batch_one(stub: gateway_pb2_grpc.GatewayStub, events: int) -> dict:
    return await _watch_one(stub, events, batch=True)


async def _run_one(stub: gateway_pb2_grpc.GatewayStub, events: int) -> dict:
    call = stub.RunJobs()
    await call.write(gateway_pb2.RunJobsRequest(jobs=[gateway_pb2.RunJobsItem(ref="1", job=_request(events, 0.0))]))
    tally = _Tally()
    done = False
    while not done:
        reply = await call.read()
        if reply is grpc.aio.EOF:
            break
        for update in reply.updates:
            kind = update.WhichOneof("kind")
            if kind == "submitted":
                tally.last_seq = update.submitted.job.last_seq  # followed from there on
            elif kind == "event" and tally.see(update.event):
                done = True
    end = time.perf_counter()
    call.cancel()
    return _single(tally, events, end)


def _single(tally: _Tally, events: int, end: float) -> dict:
    elapsed = end - tally.first if tally.progress else float("nan")
    return {
        "events_per_s": round(tally.progress / elapsed, 1) if tally.progress else 0.0,
        "received": tally.progress,
        "sent": events,
        "gaps": tally.gaps,
        "succeeded": tally.status == common_pb2.JOB_STATUS_SUCCEEDED,
    }


async def _fan_out(
    stub: gateway_pb2_grpc.GatewayStub,
    jobs: int,
    watchers: int,
    rate: float,
    seconds: float,
    rss: Callable[[], int],
    cpu: Callable[[], float],
    latest: bool = False,
    batch: bool = True,
    worker_cpu: Callable[[], float] = lambda: 0.0,
) -> dict:
    events = max(1, round(rate * seconds))
    replies = await asyncio.gather(*(stub.SubmitJob(_request(events, rate)) for _ in range(jobs)))
    ids = [r.job.job_id for r in replies]
    lags: list[tuple[int, int]] = []  # (sent, lag) in ns
    subscribed: list[float] = []
    stored: list[float] = []  # ms from the worker's send to the event's time (stamped when stored)
    delivered: list[float] = []  # ms from the event's time to its arrival
    incomplete = skipped = 0

    async def watch(job_id: str) -> None:
        nonlocal incomplete, skipped
        tally = _Tally()
        opened = time.time_ns()
        since = 0  # until the first event came, what arrives is replay: not counted
        request = gateway_pb2.WatchJobRequest(job_id=job_id, latest_progress=latest, batch=batch)
        ended = False
        async for message in stub.WatchJob(request):
            now = time.time_ns()
            if not since:
                since = now
                subscribed.append((now - opened) / 1e6)
            for event in _events(message, batch):
                if event.HasField("progress"):
                    sent = int(event.progress.message)
                    if sent >= since:
                        lags.append((sent, now - sent))
                        at = event.time.ToNanoseconds()
                        stored.append((at - sent) / 1e6)
                        delivered.append((now - at) / 1e6)
                ended = tally.see(event) or ended
            if ended:
                break
        skipped += tally.skipped
        if latest:
            if tally.fraction != 1.0 or tally.status != common_pb2.JOB_STATUS_SUCCEEDED:
                incomplete += 1
        elif tally.progress != events or tally.gaps:
            incomplete += 1

    peak = rss()
    began, gateway_cpu, client_cpu, worker_used = time.perf_counter(), cpu(), time.process_time(), worker_cpu()
    start_ns = time.time_ns()
    tasks = [asyncio.ensure_future(watch(ids[i % jobs])) for i in range(watchers)]
    while not all(t.done() for t in tasks):
        peak = max(peak, rss())
        await asyncio.wait(tasks, timeout=0.25)
    wall, gateway_cpu, client_cpu, worker_used = (
        time.perf_counter() - began,
        cpu() - gateway_cpu,
        time.process_time() - client_cpu,
        worker_cpu() - worker_used,
    )
    for task in tasks:
        task.result()
    ms = sorted(lag / 1e6 for _, lag in lags)
    subscribed.sort()
    stored.sort()
    delivered.sort()
    return {
        "jobs": jobs,
        "watchers": watchers,
        "rate_per_job": rate,
        "events_per_job": events,
        "deliveries": len(ms),
        "lag_p50_ms": round(percentile(ms, 0.50), 3),
        "lag_p99_ms": round(percentile(ms, 0.99), 3),
        "lag_max_ms": round(ms[-1], 3) if ms else 0.0,
        "lag_p99_by_second_ms": _by_second(lags, start_ns),
        "stored_lag_p50_ms": round(percentile(stored, 0.50), 3),
        "stored_lag_p99_ms": round(percentile(stored, 0.99), 3),
        "delivered_lag_p50_ms": round(percentile(delivered, 0.50), 3),
        "delivered_lag_p99_ms": round(percentile(delivered, 0.99), 3),
        "subscribe_p50_ms": round(percentile(subscribed, 0.50), 3),
        "subscribe_max_ms": round(subscribed[-1], 3) if subscribed else 0.0,
        "incomplete_watchers": incomplete,
        "skipped": skipped,
        "gateway_rss_peak_mb": round(peak / 2**20, 1),
        "wall_s": round(wall, 2),
        "gateway_cpu_s": round(gateway_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "worker_cpu_s": round(worker_used, 2),
        "gateway_cpu_us_per_delivery": round(gateway_cpu / len(ms) * 1e6, 1) if ms else 0.0,
    }


def _by_second(lags: list[tuple[int, int]], start_ns: int) -> list[float]:
    """The p99 lag in ms of the events sent in each second after `start_ns`."""
    seconds: dict[int, list[float]] = {}
    for sent, lag in lags:
        seconds.setdefault(max(0, (sent - start_ns) // 1_000_000_000), []).append(lag / 1e6)
    return [round(percentile(sorted(seconds.get(s, [0.0])), 0.99), 1) for s in range(max(seconds, default=-1) + 1)]


async def bench_progress(
    gateway: str,
    *,
    events: int = 100_000,
    jobs: int = 100,
    watchers: int = 500,
    rate: float = 20.0,
    seconds: float = 10.0,
    rss: Callable[[], int] = lambda: 0,
    cpu: Callable[[], float] = lambda: 0.0,
    batch: bool = True,
    ready_timeout: float = 30.0,
    worker_cpu: Callable[[], float] = lambda: 0.0,
) -> dict:
    """Measure progress throughput on one stream and lag under fan-out against a running gateway.

    Args:
        gateway: ``host:port`` of a gateway with ``progress-load`` instances.
        events: progress events of the single-stream job.
        jobs, watchers, rate, seconds: the fan-out: `jobs` jobs each sending `rate` events/s
            for `seconds`, followed by `watchers` WatchJob streams spread evenly over them.
        rss: returns the gateway's resident memory in bytes (sampled during the fan-out).
        cpu: returns the gateway's CPU time in seconds (read before and after each fan-out).
        worker_cpu: the same for the worker process (its share of the fan-out's CPU).
        batch: the fan-out's watchers ask for ``WatchJobRequest.batch`` (False: one event per
            message, as a client that does not ask).

    Returns:
        ``watch_*``, ``watch_batch_*`` and ``stream_*`` (single stream over WatchJob with one
        event per message, WatchJob with ``batch``, RunJobs: events_per_s,
        received, sent, gaps, succeeded, the gateway's CPU seconds), ``fanout_*`` (lag p50/p99/max in ms from the
        worker's send to arrival, the lag's p99 per second, subscribe times, deliveries,
        incomplete watchers, skipped events, gateway peak RSS in MB, wall and CPU seconds of
        gateway, client and worker) and ``fanout_latest_*`` (the same with ``latest_progress`` watchers).
    """
    figures: dict = {}
    async with grpc.aio.insecure_channel(gateway, options=GRPC_OPTIONS) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await wait_for_type(stub, WORKFLOW, ready_timeout)
        for prefix, single in (("watch_", _watch_one), ("watch_batch_", _watch_batch_one), ("stream_", _run_one)):
            used = cpu()
            figures.update({prefix + k: v for k, v in (await single(stub, events)).items()})
            figures[prefix + "gateway_cpu_s"] = round(cpu() - used, 2)
        if jobs and watchers:
            for prefix, latest in (("fanout_", False), ("fanout_latest_", True)):
                fanned = await _fan_out(stub, jobs, watchers, rate, seconds, rss, cpu, latest, batch, worker_cpu)
                figures.update({prefix + k: v for k, v in fanned.items()})
    return figures
