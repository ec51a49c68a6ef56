"""Workflow types for the hardening and fuzz tests: one parameter of every kind.

Serve them with ``workmesh worker tests.gateway.hardening_flows:worker``.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from workmesh.workers import Context, Param, Worker, workflow


@workflow(
    name="typed",
    version="1.0.0",
    description="Takes one parameter of every kind; returns sizes only.",
    params=[
        Param.string("text", default=""),
        Param.enum("colour", ["red", "green"], default="red"),
        Param.bool("flag", default=False),
        Param.int("count", default=1),
        Param.float("ratio", default=0.5),
        Param.datetime("start", default="2026-01-01T00:00:00Z"),
        Param.duration("step", default="1h"),
        Param.bytes("blob", default=b""),
    ],
)
async def typed(
    ctx: Context,
    text: str,
    colour: str,
    flag: bool,
    count: int,
    ratio: float,
    start: dt.datetime,
    step: dt.timedelta,
    blob: bytes,
) -> dict:
    # Small outputs whatever the inputs: list views and results stay cheap.
    return {
        "text_length": len(text),
        "blob_length": len(blob),
        "start_year": start.year,
        "step_seconds": step.total_seconds(),
    }


@workflow(
    name="nap",
    version="1.0.0",
    description="Sleeps in steps; honours cancel.",
    params=[Param.float("seconds", default=1.0, min=0.0, max=3600.0), Param.int("steps", default=4, min=1, max=1000)],
)
async def nap(ctx: Context, seconds: float, steps: int) -> dict:
    for i in range(steps):
        if await ctx.wait_cancelled(seconds / steps):
            ctx.check_cancelled()
        ctx.progress((i + 1) / steps, f"step {i + 1}/{steps}")
    await asyncio.sleep(0)
    return {"slept": seconds}


worker = Worker([typed, nap], capacity=3)
