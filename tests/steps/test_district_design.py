"""The district-design example workflow (issue 13) on a real dev mesh: three heat-demand
simulations in parallel, a heat-kpi step fed with each one's outputs, a comparison whose series
are those of the simulations; ``workmesh demo district-design`` runs it and shows the step tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from workmesh.workers.examples.district import VARIATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMES = [name for name, _, _ in VARIATIONS]


def test_district_design_compares_three_variations_through_steps(tmp_path):
    with DevMesh(data_dir=tmp_path, log_dir=tmp_path) as mesh:  # noqa: SIM117 - the example workers of workmesh dev
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            request = gateway_pb2.SubmitJobRequest(workflow_type="district-design")
            request.params["buildings"].int_value = 20
            job_id = stub.SubmitJob(request, timeout=10).job.job_id
            list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=180))
            job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=10)
            assert job.status == common_pb2.JOB_STATUS_SUCCEEDED, job.error
            listed = stub.ListJobs(gateway_pb2.ListJobsRequest(page_size=100), timeout=10).jobs
        shown = _cli("job", job_id, "--gateway", mesh.gateway_address)
        as_json = json.loads(_cli("job", job_id, "--json", "--gateway", mesh.gateway_address))
    steps = {j.step_name: j for j in listed if j.parent_id == job_id}
    assert set(steps) == {f"simulate-{n}" for n in NAMES} | {f"kpi-{n}" for n in NAMES}
    assert all(j.status == common_pb2.JOB_STATUS_SUCCEEDED for j in steps.values())
    assert {steps[f"simulate-{n}"].workflow_type for n in NAMES} == {"heat-demand"}
    assert {steps[f"kpi-{n}"].workflow_type for n in NAMES} == {"heat-kpi"}
    # the KPI steps start once the simulations have ended (their outputs are the KPI's params)
    last_simulation = max(steps[f"simulate-{n}"].finished_at.ToNanoseconds() for n in NAMES)
    assert all(steps[f"kpi-{n}"].created_at.ToNanoseconds() >= last_simulation for n in NAMES)

    assert job.progress.fraction == 1.0, job.progress

    outputs = MessageToDict(job.result.outputs)
    rows = {row["variation"]: row for row in outputs["variations"]}
    assert set(rows) == set(NAMES)
    costs = [row["yearly_cost_eur"] for row in outputs["variations"]]
    assert costs == sorted(costs) and outputs["cheapest"] == outputs["variations"][0]["variation"]
    for name, base, invest in VARIATIONS:
        row = rows[name]
        simulated = MessageToDict(steps[f"simulate-{name}"].result.outputs)
        assert (row["base_temperature"], row["total_demand_mwh"]) == (base, simulated["total_demand_mwh"])
        assert row["investment_eur_per_year"] == pytest.approx(invest * 20 / 30)
        parts = row["energy_cost_eur"] + row["capacity_cost_eur"] + row["investment_eur_per_year"]
        assert row["yearly_cost_eur"] == pytest.approx(parts, abs=0.02)
    # a lower base temperature (a better envelope) needs less heat
    assert rows["deep-retrofit"]["total_demand_mwh"] < rows["insulated"]["total_demand_mwh"]
    assert rows["insulated"]["total_demand_mwh"] < rows["as-is"]["total_demand_mwh"]

    # workmesh job: the step tree, each step with type, status, times and child job id
    tree = shown[shown.index("\nsteps\n") :]
    for name, step in steps.items():
        line = next(line for line in tree.splitlines() if f" {name}  " in line)
        assert f"{step.workflow_type}  SUCCEEDED" in line and step.job_id in line and " s  " in line, line
    nodes = {node["step"]: node for node in as_json["steps"]}
    assert as_json["job_id"] == job_id and set(nodes) == set(steps)
    for name, node in nodes.items():
        step = steps[name]
        assert (node["job_id"], node["workflow_type"], node["status"]) == (step.job_id, step.workflow_type, "SUCCEEDED")
        assert node["started_at"] == step.started_at.ToJsonString() and node["finished_at"]
        assert node["duration_s"] >= 0 and node["steps"] == []

    # its series are the simulations': 20 buildings, district and outdoor, for each variation
    by_job: dict[str, int] = {}
    for ref in job.result.series:
        by_job[ref.job_id] = by_job.get(ref.job_id, 0) + 1
    assert by_job == {steps[f"simulate-{n}"].job_id: 22 for n in NAMES}


def _cli(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}  # one line per step (rich wraps at 80 columns off a terminal)
    done = subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_workmesh_demo_district_design_prints_the_result_and_the_step_tree():
    done = subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", "demo", "district-design", "-p", "buildings=10"],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    assert "submitting district-design" in text and '"cheapest"' in text
    tree = text[text.index("\nsteps\n") :]
    assert tree.count("SUCCEEDED") == 7, tree  # the workflow and its six steps
    for name in NAMES:
        assert f"simulate-{name}  heat-demand  SUCCEEDED" in tree
        assert f"kpi-{name}  heat-kpi  SUCCEEDED" in tree
