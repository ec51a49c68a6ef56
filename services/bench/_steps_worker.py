"""The workflow types of ``workmesh bench steps``: a parent of N no-op steps, and the no-op.

Served by ``workmesh worker workmesh.services.bench._steps_worker:worker``.
"""

from __future__ import annotations

import asyncio
import time

from workmesh.workers import ApplicationError, Context, Param, Worker, workflow


@workflow(
    name="bench-step-noop",
    version="1.0.0",
    description="Returns at once: a step that costs only the platform.",
    params=[Param.int("index", default=0)],
)
async def noop(ctx: Context, index: int) -> dict:
    return {"index": index}


@workflow(
    name="bench-steps",
    version="1.0.0",
    description="Runs `steps` no-op steps in sequence or in parallel; fails its first attempt if asked.",
    params=[
        Param.int("steps", default=100, min=1, max=1000),
        Param.bool("parallel", default=False),
        Param.bool("fail_first", default=False),
    ],
)
async def steps(ctx: Context, steps: int, parallel: bool, fail_first: bool) -> dict:
    start = time.perf_counter()
    calls = [ctx.step(f"s{i}", "bench-step-noop", {"index": i}) for i in range(steps)]
    if parallel:
        await asyncio.gather(*calls)
    else:
        for call in calls:
            await call
    elapsed = time.perf_counter() - start
    if fail_first and ctx.attempt == 1:
        raise ApplicationError(f"first attempt fails on purpose after {elapsed:.6f} s of steps", code="BENCH")
    return {"steps_s": elapsed}


worker = Worker([steps, noop], capacity=128)
