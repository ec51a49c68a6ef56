"""A worker whose handler runs steps (issue 13 tests): two echo steps in sequence, one unknown type."""

from __future__ import annotations

from workmesh.workers import Context, Param, StepFailed, Worker, workflow
from workmesh.workers.examples.basic import echo


@workflow(name="pipeline", version="1.0.0", params=[Param.string("message", default="hi")])
async def pipeline(ctx: Context, message: str) -> dict:
    first = await ctx.step("one", "echo", {"message": message})
    second = await ctx.step("two", "echo", {"message": f"{first.outputs['message']}!"})
    try:
        await ctx.step("bad", "no-such-type", {})
        unknown = ""
    except StepFailed as exc:
        unknown = f"{exc.error_code}: {exc.message}"
    return {"second": second.outputs["message"], "unknown": unknown}


worker = Worker([pipeline, echo], capacity=8)
