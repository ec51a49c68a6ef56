"""Load generator: one job writing a job-sized set of series, for ``workmesh bench series``.

``series-load`` writes components x fields x steps values (hourly from 2030-01-01, timestamps
in seconds) through ``ctx.series`` — the path every workflow's series take: worker SDK ->
results service -> store. The data are the benchmark's deterministic profiles
(:func:`workmesh.workers.examples._loaddata.bench_values`), so a reader can check them.

Serve with ``workmesh worker workmesh.workers.examples.loadgen:worker``.
"""

from __future__ import annotations

import asyncio
import time

from workmesh.workers import Context, Param, Worker, workflow
from workmesh.workers.examples._loaddata import write_bench_series


class _JobWriter:
    """What ``write_bench_series`` writes with: the job's series, timestamps in seconds."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def series(self, measurement: str, /, **tags: str):
        return self.ctx.series(measurement, units=None, time_unit="s", **tags)


@workflow(
    name="series-load",
    version="1.0.0",
    description="Writes components x fields x steps benchmark values as series (load generator).",
    params=[
        Param.int("components", default=1000, min=1, max=100_000, description="series (one per component)"),
        Param.int("fields", default=10, min=1, max=100, description="fields per series"),
        Param.int("steps", default=8760, min=1, max=1_000_000, description="hourly values per field"),
    ],
    max_attempts=1,
)
async def series_load(ctx: Context, components: int, fields: int, steps: int) -> dict:
    began, cpu = time.perf_counter(), time.process_time()
    values = await write_bench_series(_JobWriter(ctx), components, fields, steps)
    # The SDK closes the writer (the last batches are stored) after this returns.
    return {"values": values, "handler_s": time.perf_counter() - began, "handler_cpu_s": time.process_time() - cpu}


worker = Worker([series_load], capacity=1)


@workflow(
    name="progress-load",
    version="1.0.0",
    description="Sends progress events as fast as asked, each stamped with when it was sent (load generator).",
    params=[
        Param.int("events", default=100_000, min=1, max=10_000_000, description="progress events to send"),
        Param.float(
            "rate",
            default=0.0,
            min=0.0,
            max=1_000_000.0,
            unit="1/s",
            description="events per second (0: as fast as the worker can)",
        ),
    ],
    max_attempts=1,
)
async def progress_load(ctx: Context, events: int, rate: float) -> dict:
    # The message is the send time (ns since the epoch): the benchmark's watchers measure lag.
    began = time.perf_counter()
    for i in range(events):
        ctx.progress((i + 1) / events, str(time.time_ns()))
        if rate:
            delay = began + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        elif i % 256 == 255:
            await asyncio.sleep(0)  # let the session send what is ready
    return {"events": events, "handler_s": time.perf_counter() - began}


# Every progress call becomes an event (no coalescing): what `workmesh bench progress` measures.
progress_worker = Worker([progress_load], capacity=256, progress_interval=0.0)
