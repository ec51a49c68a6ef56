"""Series end to end: real registry, results service, gateway and worker processes on loopback.

Jobs write series with ``ctx.series`` in their worker process; the worker finds the results
service through the registry; the job result lists SeriesRefs; ``workmesh series`` (a CLI
subprocess) lists, exports and plots them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys

import grpc
import numpy as np
import pytest

from tests.series.workflows import profile
from tests.support import eventually, run
from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import NotFound
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers.examples import heat_demand

pytestmark = pytest.mark.e2e
HEAT = "workmesh.workers.examples.heat_demand:worker"
SERIES = "tests.series.workflows:worker"
SUCCEEDED, FAILED = common_pb2.JOB_STATUS_SUCCEEDED, common_pb2.JOB_STATUS_FAILED


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("series-mesh")
    with DevMesh(workers=(HEAT, SERIES), results=True, data_dir=tmp, log_dir=tmp) as started:
        yield started


@pytest.fixture(scope="module")
def gateway(mesh):
    with grpc.insecure_channel(mesh.gateway_address) as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)


def run_job(stub, workflow_type: str, **params) -> tuple[str, list[common_pb2.JobEvent]]:
    request = gateway_pb2.SubmitJobRequest(
        workflow_type=workflow_type, params={k: common_pb2.ParamValue(string_value=str(v)) for k, v in params.items()}
    )
    job_id = stub.SubmitJob(request, timeout=10).job.job_id
    return job_id, list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90))


def outcome(events, kind: str):
    return next(getattr(e, kind) for e in reversed(events) if e.WhichOneof("payload") == kind)


def final_status(events) -> int:
    return [e.status.status for e in events if e.WhichOneof("payload") == "status"][-1]


def series_cli(mesh: DevMesh, *args: str) -> subprocess.CompletedProcess:
    # No --results: the CLI finds the results service in the registry, as users do.
    env = {**os.environ, "CONSUL_HTTP_ADDR": mesh.registry_address}
    env.pop("WORKMESH_RESULTS", None)
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", "series", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def read(mesh: DevMesh, job_id: str, **kwargs):
    async def go():
        async with ResultsClient(mesh.results_address) as client:
            return await client.read(job_id, **kwargs)

    return run(go())


@pytest.fixture(scope="module")
def heat_jobs(gateway):
    """Two variations of one heat-demand project: base temperature 18 °C and 15 °C."""
    jobs = {}
    for base in (18.0, 15.0):
        job_id, events = run_job(gateway, "heat-demand", buildings=5, seed=7, base_temperature=base)
        assert final_status(events) == SUCCEEDED, events[-3:]
        jobs[base] = (job_id, outcome(events, "result"))
    return jobs


def test_heat_demand_result_lists_series_refs(mesh, heat_jobs):
    _, result = heat_jobs[18.0]
    refs = {(r.measurement, r.field, tuple(sorted(r.tags.items()))): r for r in result.series}
    expected = {("heat_demand", "Q", (("building", f"b{i}"),)) for i in range(5)}
    expected |= {("district", "Q", ()), ("outdoor", "T", ())}
    assert set(refs) == expected
    for ref in result.series:
        assert (ref.store, ref.host, ref.count) == ("parquet", mesh.results_address, 8760)
        assert ref.unit == ("°C" if ref.field == "T" else "kW")
    sim = heat_demand.simulate(buildings=5, seed=7, base_temperature=18.0)
    assert result.outputs["total_demand_mwh"] == pytest.approx(sim["total_demand_mwh"])


def test_cli_lists_the_series_as_json(mesh, heat_jobs):
    job_id, _ = heat_jobs[18.0]
    listed = series_cli(mesh, job_id, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {(r["measurement"], r["tags"].get("building", "")) for r in rows} == {
        ("heat_demand", f"b{i}") for i in range(5)
    } | {("district", ""), ("outdoor", "")}
    assert all(r["count"] == 8760 and r["job_id"] == job_id for r in rows)
    district = next(r for r in rows if r["measurement"] == "district")
    assert (district["fields"], district["units"]) == (["Q"], {"Q": "kW"})
    assert (district["start"], district["end"]) == ("2025-01-01T00:00:00Z", "2025-12-31T23:00:00Z")


def test_cli_csv_export_has_the_simulated_values(mesh, heat_jobs):
    job_id, _ = heat_jobs[18.0]
    exported = series_cli(mesh, job_id, "--field", "Q", "--measurement", "district", "--csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0] == ["time", "time_ns", "district [kW]"]
    assert len(rows) == 1 + 8760 and rows[1][0] == "2025-01-01T00:00:00Z"
    q = np.array([float(r[2]) for r in rows[1:]])
    # Exactly what ReadSeries returns, and consistent with the model's own totals.
    (stored,) = read(mesh, job_id, measurement="district", fields=["Q"])
    np.testing.assert_array_equal(q, stored.fields["Q"])
    sim = heat_demand.simulate(buildings=5, seed=7, base_temperature=18.0)
    # simulate() rounds its outputs to 3 decimals; hourly kW sum to kWh, /1000 to MWh.
    assert q.sum() / 1000 == pytest.approx(sim["total_demand_mwh"], abs=5.1e-4)
    assert q.max() == pytest.approx(sim["peak_demand_kw"], abs=5.1e-4)
    assert rows[1 + int(q.argmax())][0] == sim["peak_time"] + ":00:00Z"
    # The buildings add up to the district.
    buildings = read(mesh, job_id, measurement="heat_demand", fields=["Q"])
    np.testing.assert_allclose(sum(s.fields["Q"] for s in buildings), q, rtol=1e-12)


def test_cli_plots_two_variations_into_a_png(mesh, heat_jobs, tmp_path):
    png = tmp_path / "compare.png"
    jobs = [heat_jobs[18.0][0], heat_jobs[15.0][0]]
    plotted = series_cli(mesh, *jobs, "--field", "Q", "--measurement", "district", "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 500)  # the default 10 x 5 in at 100 dpi
    assert len(data) > 20_000, "a chart with two lines, axes and a legend, not an empty canvas"


@pytest.mark.parametrize("workflow_type", ["series-async", "series-sync"])
def test_retried_attempt_writes_fresh(mesh, gateway, workflow_type):
    job_id, events = run_job(gateway, workflow_type, steps=24, scale=3.0, fail_first="true")
    assert final_status(events) == SUCCEEDED, [e for e in events if e.WhichOneof("payload") == "error"]
    attempts = {e.status.attempt for e in events if e.WhichOneof("payload") == "status"}
    assert max(attempts) == 2 and outcome(events, "result").outputs["attempt"] == 2
    assert {(r.measurement, r.field): r.count for r in outcome(events, "result").series} == {
        ("heat", "Q"): 24,
        ("heat", "T"): 24,
        ("outdoor", "T"): 24,
    }
    (heat,) = read(mesh, job_id, measurement="heat")
    _, q, _ = profile(24, 3.0)
    np.testing.assert_array_equal(heat.fields["Q"], q)  # the second attempt's data, once


def test_deleting_the_job_deletes_its_series(mesh, gateway):
    job_id, events = run_job(gateway, "series-sync", steps=5)
    assert final_status(events) == SUCCEEDED
    assert read(mesh, job_id)
    gateway.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=job_id), timeout=30)

    def gone() -> bool:
        try:
            read(mesh, job_id)
        except NotFound:
            return True
        return False

    eventually(gone, timeout=30)


def test_no_results_service_is_a_clear_job_error(tmp_path):
    with (
        DevMesh(workers=(SERIES,), results=False, data_dir=tmp_path, log_dir=tmp_path) as bare,
        grpc.insecure_channel(bare.gateway_address) as channel,
    ):
        _, events = run_job(gateway_pb2_grpc.GatewayStub(channel), "series-async", steps=5)
    assert final_status(events) == FAILED
    error = outcome(events, "error")
    assert error.code == "RESULTS_UNAVAILABLE"
    assert "no passing 'workmesh-results'" in error.message and bare.registry_address in error.message
