"""The example workflow types compute what they claim (run through a real Worker)."""

from __future__ import annotations

import pytest

from tests.support import run
from tests.workers.helpers import execute_request, kinds
from workmesh.services.core.errors import InvalidArgument
from workmesh.workers import Worker
from workmesh.workers.examples import basic, heat_demand, kpi


async def run_job(worker, job_id, workflow_type, **params):
    job, after = worker.execute(execute_request(job_id, workflow_type, **params))
    return [event async for event in job.follow(after)]


def test_heat_demand_is_plausible_and_reproducible():
    async def body():
        worker = Worker([heat_demand.heat_demand])
        first = await run_job(worker, "h1", "heat-demand", buildings=1200, year=2024, seed=3, write_series=False)
        again = await run_job(worker, "h2", "heat-demand", buildings=1200, year=2024, seed=3, write_series=False)
        warmer = await run_job(
            worker, "h3", "heat-demand", buildings=1200, year=2024, seed=3, base_temperature=15.5, write_series=False
        )
        return first, again, warmer

    first, again, warmer = run(body())
    assert kinds(first)[-1] == "result", first[-1]
    out = first[-1].result.outputs
    assert out["hours"] == 8784  # a leap year
    assert 2000 < out["degree_days"] < 3600  # the Netherlands, base 18 °C
    monthly = list(out["monthly_mwh"])
    assert len(monthly) == 12 and sum(monthly) == pytest.approx(out["total_demand_mwh"], rel=1e-3)
    assert monthly[0] > 3 * monthly[6]  # January against July
    assert out["dhw_mwh"] / out["total_demand_mwh"] == pytest.approx(0.20, abs=0.01)
    # Roughly 5-20 MWh per home per year, as Dutch homes use.
    assert 5 < out["total_demand_mwh"] / 1200 < 20
    assert out["peak_demand_kw"] > out["total_demand_mwh"] * 1000 / 8784
    progress = [e.progress.fraction for e in first if e.WhichOneof("payload") == "progress"]
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert again[-1].result.outputs == out  # seeded: the same inputs give the same outputs
    assert warmer[-1].result.outputs["degree_days"] < out["degree_days"]


def test_heat_demand_stops_when_cancelled():
    async def body():
        worker = Worker([heat_demand.heat_demand])
        job, _ = worker.execute(execute_request("hc", "heat-demand", buildings=100000, write_series=False))
        events = []
        async for event in job.follow(0):
            events.append(event)
            if event.WhichOneof("payload") == "progress":
                worker.cancel("hc", "user cancelled")
        return events

    events = run(body())
    assert events[-1].error.code == "CANCELLED" and events[-1].error.message == "user cancelled"


def test_basic_types():
    async def body():
        worker = Worker([basic.echo, basic.sleep, basic.fail])
        echo = await run_job(worker, "e", "echo", message="hello")
        sleep = await run_job(worker, "s", "sleep", seconds=0.02, steps=2)
        fail = await run_job(worker, "f", "fail", message="boom", retryable="yes")
        job, _ = worker.execute(execute_request("sc", "sleep", seconds=60, steps=2))
        worker.cancel("sc")
        cancelled = [e async for e in job.follow(0)]
        return echo, sleep, fail, cancelled

    echo, sleep, fail, cancelled = run(body())
    assert kinds(echo) == ["started", "result"] and echo[-1].result.outputs["message"] == "hello"
    assert sleep[-1].result.outputs["steps"] == 2
    assert (fail[-1].error.message, fail[-1].error.retryable) == ("boom", True)
    assert cancelled[-1].error.code == "CANCELLED"


def test_kpi_peak_ratio():
    async def body():
        worker = Worker([kpi.peak_ratio])
        events = await run_job(worker, "k1", "kpi-peak-ratio", peak=10, average=4)
        with pytest.raises(InvalidArgument, match="params.average: must be ≥ 0.001"):
            worker.execute(execute_request("k2", "kpi-peak-ratio", peak=10, average=0))
        return events

    events = run(body())
    assert dict(events[-1].result.outputs) == {"ratio": 2.5}


def test_heat_demand_small_runs_report_progress_and_match_simulate():
    async def body():
        return await run_job(
            Worker([heat_demand.heat_demand]), "hs", "heat-demand", buildings=40, seed=7, write_series=False
        )

    events = run(body())
    fractions = [e.progress.fraction for e in events if e.WhichOneof("payload") == "progress"]
    assert len(fractions) >= 2 and fractions[-1] == 1.0
    expected = heat_demand.simulate(buildings=40, seed=7)
    assert events[-1].result.outputs["total_demand_mwh"] == pytest.approx(expected["total_demand_mwh"])
    # Chunking does not change the numbers: building properties are drawn up front.
    heat_demand.MAX_CHUNK, saved = 3, heat_demand.MAX_CHUNK
    try:
        assert heat_demand.simulate(buildings=40, seed=7)["peak_demand_kw"] == pytest.approx(
            expected["peak_demand_kw"], rel=1e-9
        )
    finally:
        heat_demand.MAX_CHUNK = saved


def test_example_modules_expose_workers():
    assert set(basic.worker.definitions) == {"echo", "sleep", "fail"}
    assert set(heat_demand.worker.definitions) == {"heat-demand"}
    assert set(kpi.worker.definitions) == {"kpi-peak-ratio"}
