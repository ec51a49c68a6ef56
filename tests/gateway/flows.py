"""Workflow types the gateway tests need beyond workmesh.workers.examples.basic."""

from __future__ import annotations

import time

from workmesh.workers import Context, Param, Worker, workflow


@workflow(
    name="stubborn",
    version="1.0.0",
    description="Blocks a thread and ignores cancellation.",
    params=[Param.float("seconds", default=2.0, min=0.0, max=30.0)],
)
def stubborn(ctx: Context, seconds: float) -> dict:
    time.sleep(seconds)  # a sync handler in a thread: cancellation cannot reach it
    return {"slept": seconds}


@workflow(
    name="retry-budget",
    version="1.0.0",
    description="Declares max_attempts=2.",
    params=[Param.float("seconds", default=10.0, min=0.0, max=60.0)],
    max_attempts=2,
)
async def retry_budget(ctx: Context, seconds: float) -> dict:
    await ctx.wait_cancelled(seconds)
    ctx.check_cancelled()
    return {"slept": seconds}


@workflow(name="fresh", version="2.0.0", description="A type that appears while the gateway runs.")
async def fresh(ctx: Context) -> dict:
    return {"fresh": True}


stubborn_worker = Worker([stubborn], capacity=2)
budget_worker = Worker([retry_budget], capacity=2)


@workflow(name="versioned", version="1.9.0", description="old", params=[Param.int("n", default=1)])
async def versioned_old(ctx: Context, n: int) -> dict:
    return {"version": "1.9.0"}


@workflow(
    name="versioned",
    version="1.10.0",
    description="new",
    params=[Param.int("n", default=1), Param.string("label", default="")],
)
async def versioned_new(ctx: Context, n: int, label: str) -> dict:
    return {"version": "1.10.0"}
