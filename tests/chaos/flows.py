"""Test-only workflow types for the chaos tests (``workmesh worker tests.chaos.flows:worker``).

``chaos-record`` appends one line per handler run to the file named by its ``log`` parameter,
so a test can prove how many times each job's handler really ran (a re-attached job runs once).
``chaos-crash`` kills its own worker process: a hard crash of every worker that takes it.
"""

from __future__ import annotations

import os
import signal

from workmesh.workers import Context, Param, Worker, workflow


@workflow(
    name="chaos-record",
    version="1.0.0",
    description="Records each run in a file, then works a while.",
    params=[
        Param.string("log", default=""),
        Param.float("seconds", default=2.0, min=0.0, max=120.0),
        Param.int("steps", default=10, min=1, max=1000),
    ],
    max_attempts=5,
)
async def record(ctx: Context, log: str, seconds: float, steps: int) -> dict:
    if log:
        with open(log, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - one short append per run
            out.write(f"{ctx.job_id} {ctx.attempt} {ctx.instance_id}\n")
    for step in range(steps):
        if await ctx.wait_cancelled(seconds / steps):
            ctx.check_cancelled()
        ctx.progress((step + 1) / steps, f"step {step + 1} of {steps}")
    return {"job_id": ctx.job_id, "steps": steps}


@workflow(
    name="chaos-crash",
    version="1.0.0",
    description="Kills its own worker process (a hard crash).",
    params=[],
    max_attempts=2,
)
async def crash(ctx: Context) -> dict:
    ctx.progress(0.1, "about to crash")
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


worker = Worker([record], capacity=4)
crash_worker = Worker([crash], capacity=1)
