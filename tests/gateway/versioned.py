"""Workflow types for the constraint and version tests, served by real worker processes
(``python -m tests.gateway.worker_main ADDR tests.gateway.versioned:worker_v1``).

``upgrade`` exists in two versions: 2.0.0 adds the ``scale`` parameter. Each job returns the
version that ran it, so a test can tell where every job went.
"""

from __future__ import annotations

import asyncio

from workmesh.workers import Context, Param, Worker, workflow


@workflow(
    name="period",
    version="1.0.0",
    params=[
        Param.datetime("start", required=True),
        Param.datetime("end", required=True),
        Param.float("min_temperature", default=10.0),
        Param.float("max_temperature", default=80.0),
    ],
    constraints=["end > start", "min_temperature <= max_temperature"],
)
async def period(ctx: Context, start, end, min_temperature: float, max_temperature: float) -> dict:
    return {"hours": (end - start).total_seconds() / 3600}


@workflow(name="upgrade", version="1.0.0", params=[Param.float("seconds", default=0.0, min=0.0)])
async def upgrade_v1(ctx: Context, seconds: float) -> dict:
    await asyncio.sleep(seconds)
    return {"version": "1.0.0"}


@workflow(
    name="upgrade",
    version="2.0.0",
    params=[Param.float("seconds", default=0.0, min=0.0), Param.int("scale", default=1, min=1)],
)
async def upgrade_v2(ctx: Context, seconds: float, scale: int) -> dict:
    await asyncio.sleep(seconds)
    return {"version": "2.0.0", "scale": scale}


worker_period = Worker([period], capacity=2)
worker_v1 = Worker([upgrade_v1], capacity=2)
worker_v2 = Worker([upgrade_v2], capacity=2)
