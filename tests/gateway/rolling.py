"""The ``rolling`` workflow type in two versions for the rolling-upgrade test, served by real
``workmesh worker`` processes (``tests.gateway.rolling:worker_v1`` / ``:worker_v2``).

2.0.0 adds the ``scale`` parameter. Every run appends ``job_id attempt instance version`` to the
file named by ``log``, so the test counts runs and sees where each one went; a job with ``hold``
waits until that file exists (a job that is surely still running when its worker is told to stop).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from workmesh.workers import Context, Param, Worker, workflow

COMMON = [
    Param.string("log", required=True),
    Param.string("hold", default=""),
    Param.float("seconds", default=0.0, min=0.0, max=30.0),
]


async def _run(ctx: Context, version: str, log: str, hold: str, seconds: float) -> None:
    with open(log, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - one short append per run
        out.write(f"{ctx.job_id} {ctx.attempt} {ctx.instance_id} {version}\n")
    while hold and not Path(hold).exists():  # noqa: ASYNC110 - a file another process creates
        await asyncio.sleep(0.02)
    await asyncio.sleep(seconds)


@workflow(name="rolling", version="1.0.0", params=COMMON)
async def rolling_v1(ctx: Context, log: str, hold: str, seconds: float) -> dict:
    await _run(ctx, "1.0.0", log, hold, seconds)
    return {"version": "1.0.0"}


@workflow(name="rolling", version="2.0.0", params=[*COMMON, Param.int("scale", default=1, min=1)])
async def rolling_v2(ctx: Context, log: str, hold: str, seconds: float, scale: int) -> dict:
    await _run(ctx, "2.0.0", log, hold, seconds)
    return {"version": "2.0.0", "scale": scale}


worker_v1 = Worker([rolling_v1], capacity=3)
worker_v2 = Worker([rolling_v2], capacity=3)
