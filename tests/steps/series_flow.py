"""Workflow types whose steps write series (issue 13: a child's series appear in its parent's result).

``steps-series`` writes its own series ``own``, then runs two ``steps-series-leaf`` steps in
parallel (series ``leaf`` tagged with the variation) and one ``steps-series-mid`` step, which
writes nothing itself and runs one leaf step of its own (a series two levels down).
"""

from __future__ import annotations

import asyncio

import numpy as np

from workmesh.workers import Context, Param, Worker, workflow

HOURS = np.arange(np.datetime64("2026-01-01T00", "h"), np.datetime64("2026-01-01T06", "h")).astype("datetime64[ns]")


@workflow(name="steps-series-leaf", version="1.0.0", params=[Param.string("variation")])
async def leaf(ctx: Context, variation: str) -> dict:
    await ctx.series("leaf", variation=variation, units={"Q": "kW"}).write(HOURS, Q=np.ones(HOURS.size))
    return {"variation": variation}


@workflow(name="steps-series-mid", version="1.0.0", params=[])
async def mid(ctx: Context) -> dict:
    deep = await ctx.step("deep", "steps-series-leaf", {"variation": "deep"})
    return {"deep": deep.outputs["variation"]}


@workflow(name="steps-series", version="1.0.0", params=[])
async def parent(ctx: Context) -> dict:
    await ctx.series("own", units={"T": "°C"}).write(HOURS, T=np.zeros(HOURS.size))
    a, b = await asyncio.gather(
        ctx.step("a", "steps-series-leaf", {"variation": "a"}),
        ctx.step("b", "steps-series-leaf", {"variation": "b"}),
    )
    await ctx.step("mid", "steps-series-mid", {})
    return {"variations": [a.outputs["variation"], b.outputs["variation"]]}


worker = Worker([parent, mid, leaf], capacity=8)
