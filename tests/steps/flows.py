"""Test-only workflow types for the real-process step tests (issue 13).

``steps-record`` (the step; its own worker process, :data:`children`) appends one line per run
to the file named by ``log`` — ``<tag> <job id> <attempt>`` — so a test counts how many times
each step really ran; it waits while the file ``hold`` is missing and fails while the file
``fail`` exists. ``steps-flow`` (the parent, :data:`parents`) runs the steps one, two (with the
hold and fail files) and three in sequence; ``steps-reuse`` asks for one step name twice with
other params; ``steps-weighted`` runs two weighted steps in parallel (progress roll-up);
``steps-last-word`` runs one step, then reports its own progress and ends at once.
"""

from __future__ import annotations

import asyncio
import os

from workmesh.workers import ApplicationError, Context, Param, StepFailed, Worker, workflow


def _append(log: str, line: str) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(line + "\n")


@workflow(
    name="steps-record",
    version="1.0.0",
    description="Records each run in a file; waits for a file; fails while a file exists.",
    params=[
        Param.string("log"),
        Param.string("tag"),
        Param.string("hold", default=""),
        Param.string("fail", default=""),
    ],
    max_attempts=3,
)
async def record(ctx: Context, log: str, tag: str, hold: str, fail: str) -> dict:
    _append(log, f"{tag} {ctx.job_id} {ctx.attempt}")
    ctx.progress(0.5, f"{tag} half way")
    while hold and not os.path.exists(hold):
        if await ctx.wait_cancelled(0.05):
            ctx.check_cancelled()
    ctx.progress(1.0, f"{tag} done")
    if fail and os.path.exists(fail):
        raise ApplicationError(f"step {tag} failed: {fail} exists", code="TEST_FAILURE")
    return {"tag": tag}


@workflow(
    name="steps-flow",
    version="1.0.0",
    description="Three steps in sequence; the second one holds or fails as the test says.",
    params=[Param.string("log"), Param.string("hold", default=""), Param.string("fail", default="")],
    max_attempts=4,
)
async def flow(ctx: Context, log: str, hold: str, fail: str) -> dict:
    _append(log, f"parent {ctx.job_id} {ctx.attempt}")
    one = await ctx.step("one", "steps-record", {"log": log, "tag": "one"})
    two = await ctx.step("two", "steps-record", {"log": log, "tag": "two", "hold": hold, "fail": fail})
    three = await ctx.step("three", "steps-record", {"log": log, "tag": "three"})
    return {"tags": [one.outputs["tag"], two.outputs["tag"], three.outputs["tag"]]}


@workflow(
    name="steps-reuse",
    version="1.0.0",
    description="Asks for the step name x twice, with other params the second time.",
    params=[Param.string("log")],
)
async def reuse(ctx: Context, log: str) -> dict:
    await ctx.step("x", "steps-record", {"log": log, "tag": "a"})
    try:
        await ctx.step("x", "steps-record", {"log": log, "tag": "b"})
    except StepFailed as exc:
        return {"code": exc.error_code, "message": exc.message}
    return {"code": "", "message": "reused"}


@workflow(
    name="steps-weighted",
    version="1.0.0",
    description="Two steps in parallel: big (weight 3) ends at once, small (weight 1) holds half way.",
    params=[Param.string("log"), Param.string("hold")],
)
async def weighted(ctx: Context, log: str, hold: str) -> dict:
    big, small = await asyncio.gather(
        ctx.step("big", "steps-record", {"log": log, "tag": "big"}, weight=3),
        ctx.step("small", "steps-record", {"log": log, "tag": "small", "hold": hold}),
    )
    return {"tags": [big.outputs["tag"], small.outputs["tag"]]}


@workflow(
    name="steps-last-word",
    version="1.0.0",
    description="One step, then its own progress (the last word on it), and the end.",
    params=[Param.string("log")],
)
async def last_word(ctx: Context, log: str) -> dict:
    await ctx.step("only", "steps-record", {"log": log, "tag": "only"})
    ctx.progress(1.0, "compared 1 variation")
    return {}


children = Worker([record], capacity=8)
parents = Worker([flow, reuse, weighted, last_word], capacity=4)
