"""Workflow types of the series tests: async and sync handlers writing series through ``ctx.series``.

Served in-process by the SDK tests and as a worker process (``tests.series.workflows:worker``)
by the end-to-end tests.
"""

from __future__ import annotations

import numpy as np

from workmesh.workers import Context, Param, RetryableError, Worker, workflow

START = np.datetime64("2030-01-01T00", "h")


def profile(steps: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly timestamps, a heat load Q (kW) and a temperature T (°C): known values to compare with."""
    ts = START + np.arange(steps)
    hours = np.arange(steps, dtype=float)
    return ts, scale * (5.0 + np.sin(hours / 3.0)), 10.0 - hours / 10.0


_PARAMS = [
    Param.int("steps", default=48, min=1, max=100_000),
    Param.float("scale", default=1.0),
    Param.bool("fail_first", default=False, description="store data, then fail attempt 1 (retryable)"),
    Param.bool("fail", default=False, description="fail after writing (not retryable)"),
    Param.bool("wait_cancel", default=False, description="write, then wait to be cancelled"),
]


@workflow(name="series-async", version="1.0.0", params=_PARAMS, max_attempts=2)
async def series_async(ctx: Context, steps: int, scale: float, fail_first: bool, fail: bool, wait_cancel: bool) -> dict:
    ts, q, t = profile(steps, scale)
    heat = ctx.series("heat", asset="b1", units={"Q": "kW", "T": "°C"})
    half = steps // 2
    await heat.write(ts[:half], Q=q[:half], T=t[:half].tolist())  # numpy arrays and lists alike
    await heat.write(ts[half:], Q=q[half:], T=t[half:].tolist())
    await ctx.series("outdoor").write(ts, T=t)
    if fail_first and ctx.attempt == 1:
        await heat.flush()  # stored for sure: the retry must start from nothing
        raise RetryableError("first attempt fails on purpose")
    if wait_cancel:
        await ctx.wait_cancelled()
        ctx.check_cancelled()
    if fail:
        raise ValueError("failed on purpose after writing")
    return {"steps": steps, "attempt": ctx.attempt}


@workflow(name="series-sync", version="1.0.0", params=_PARAMS, max_attempts=2)
def series_sync(ctx: Context, steps: int, scale: float, fail_first: bool, fail: bool, wait_cancel: bool) -> dict:
    ts, q, t = profile(steps, scale)
    heat = ctx.series("heat", asset="b1", units={"Q": "kW", "T": "°C"})
    heat.write(ts, Q=q, T=t)  # blocks in this thread while the results service is busy
    ctx.series("outdoor").write(ts, T=t.tolist())
    if fail_first and ctx.attempt == 1:
        heat.flush()
        raise RetryableError("first attempt fails on purpose")
    if fail:
        raise ValueError("failed on purpose after writing")
    return {"steps": steps, "attempt": ctx.attempt}


worker = Worker([series_async, series_sync], capacity=4)
