"""Trivial workflow types for tests and benchmarks: ``echo``, ``sleep`` and ``fail``.

Serve them with ``workmesh worker workmesh.workers.examples.basic:worker``.
"""

from __future__ import annotations

import asyncio

from workmesh.workers import ApplicationError, Context, Param, RetryableError, Worker, workflow


@workflow(
    name="echo",
    version="1.0.0",
    description="Returns its parameters; a no-op for benchmarks.",
    params=[Param.string("message", default="", description="any text, returned as is")],
)
async def echo(ctx: Context, message: str) -> dict:
    # Kept minimal on purpose: the dispatch benchmark measures the platform, not this handler.
    return {"message": message}


@workflow(
    name="sleep",
    version="1.0.0",
    description="Sleeps in steps, reporting progress; honours cancel.",
    params=[
        Param.float("seconds", default=1.0, min=0.0, max=86400.0, unit="s", description="total time to sleep"),
        Param.int("steps", default=10, min=1, max=100000, description="progress events to send"),
    ],
)
async def sleep(ctx: Context, seconds: float, steps: int) -> dict:
    step = seconds / steps
    for i in range(steps):
        if await ctx.wait_cancelled(step):
            ctx.check_cancelled()
        ctx.progress((i + 1) / steps, f"step {i + 1}/{steps}")
    return {"slept": seconds, "steps": steps}


@workflow(
    name="fail",
    version="1.0.0",
    description="Fails on request, with a retryable error or not.",
    params=[
        Param.string("message", default="failed on request", description="the error message"),
        Param.bool("retryable", default=False, description="raise a RetryableError"),
    ],
)
async def fail(ctx: Context, message: str, retryable: bool) -> dict:
    await asyncio.sleep(0)
    if retryable:
        raise RetryableError(message)
    raise ApplicationError(message, code="REQUESTED_FAILURE")


# Generous capacity: these handlers cost nothing, and the dispatch benchmark keeps 64+ in flight.
worker = Worker([echo, sleep, fail], capacity=128)
