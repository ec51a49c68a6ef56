"""A KPI calculator: peak-to-average ratio of a load profile.

Not part of `workmesh dev`: the discovery benchmark and the tests start it to show that a new
workflow type appears while the mesh runs.
"""

from workmesh.workers import Param, Worker, workflow


@workflow(
    name="kpi-peak-ratio",
    version="0.1.0",
    description="peak-to-average ratio of a load profile",
    params=[Param.float("peak", min=0, required=True), Param.float("average", min=0.001, required=True)],
)
def peak_ratio(ctx, peak: float, average: float) -> dict:
    ctx.progress(1.0, "done")
    return {"ratio": peak / average}


worker = Worker([peak_ratio], capacity=2)
