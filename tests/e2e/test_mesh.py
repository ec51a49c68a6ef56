"""The mesh core end to end: real registry, gateway and worker processes on loopback ports."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from tests.e2e.conftest import BASIC
from tests.support import eventually, free_port
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, worker_pb2, worker_pb2_grpc
from workmesh.workers.examples import heat_demand

pytestmark = pytest.mark.e2e
SUCCEEDED = common_pb2.JOB_STATUS_SUCCEEDED


def submit(stub, workflow_type: str, **params: str) -> str:
    request = gateway_pb2.SubmitJobRequest(
        workflow_type=workflow_type, params={k: common_pb2.ParamValue(string_value=str(v)) for k, v in params.items()}
    )
    return stub.SubmitJob(request, timeout=10).job.job_id


def watch(stub, job_id: str, after_seq: int = 0) -> list[common_pb2.JobEvent]:
    return list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id, after_seq=after_seq), timeout=60))


def final_status(events) -> int:
    statuses = [e.status.status for e in events if e.WhichOneof("payload") == "status"]
    return statuses[-1]


def type_names(stub) -> dict[str, gateway_pb2.WorkflowTypeInfo]:
    types = stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=5).types
    return {t.type.name: t for t in types}


def collect(stream, into: list) -> None:
    """Read a server stream into a list until it ends or is cancelled."""
    with contextlib.suppress(grpc.RpcError):
        into.extend(stream)


def cli(*args: str, gateway: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args, "--gateway", gateway],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_types_of_both_workers_are_listed_with_schemas(gateway):
    types = type_names(gateway)
    assert {"heat-demand", "echo", "sleep", "fail"} <= set(types)
    heat = types["heat-demand"]
    assert heat.healthy_instances == 1 and heat.capacity >= 1
    params = {p.name: p for p in heat.type.params}
    assert params["buildings"].type == common_pb2.PARAM_TYPE_INT
    assert params["buildings"].HasField("min") and params["buildings"].HasField("default")


def test_heat_demand_job_progress_in_order_and_result_right(gateway):
    job_id = submit(gateway, "heat-demand", buildings=40, seed=7, write_series="false")  # no results service here
    events = watch(gateway, job_id)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "events numbered 1.. without gaps"
    fractions = [e.progress.fraction for e in events if e.WhichOneof("payload") == "progress"]
    assert len(fractions) >= 2 and fractions == sorted(fractions)
    assert final_status(events) == SUCCEEDED
    result = next(e.result for e in events if e.WhichOneof("payload") == "result")
    job = gateway.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=5)
    # The same computation run here, from the job's completed parameters, gives the same totals.
    params = {name: getattr(value, value.WhichOneof("kind")) for name, value in job.params.items()}
    assert params.pop("write_series") is False
    expected = heat_demand.simulate(**params)
    outputs = MessageToDict(result.outputs)
    assert outputs["total_demand_mwh"] == pytest.approx(expected["total_demand_mwh"], rel=1e-9)
    assert outputs["peak_demand_kw"] == pytest.approx(expected["peak_demand_kw"], rel=1e-9)


def test_resume_watch_after_a_sequence_number(gateway):
    job_id = submit(gateway, "echo", message="hello")
    events = watch(gateway, job_id)
    assert final_status(events) == SUCCEEDED
    rest = watch(gateway, job_id, after_seq=2)
    assert [e.seq for e in rest] == [e.seq for e in events[2:]]


def test_bad_input_gets_clear_status_codes(gateway):
    with pytest.raises(grpc.RpcError) as err:
        submit(gateway, "no-such-type")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "heat-demand" in err.value.details(), "lists the available types"
    with pytest.raises(grpc.RpcError) as err:
        submit(gateway, "heat-demand", buildings="many")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "params.buildings" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        submit(gateway, "heat-demand", buildings=0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "params.buildings" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        submit(gateway, "echo", colour="red")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "params.colour" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        gateway.GetJob(gateway_pb2.GetJobRequest(job_id="nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "heat-demand" in type_names(gateway), "the gateway still serves after bad input"


def test_cli_types_submit_follow_jobs_and_errors(mesh):
    listed = cli("types", "--json", gateway=mesh.gateway_address)
    assert listed.returncode == 0, listed.stderr
    assert "heat-demand" in {t["type"]["name"] for t in json.loads(listed.stdout)}
    run = cli("submit", "echo", "-p", "message=hi", "--follow", "--json", gateway=mesh.gateway_address)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert any(e.get("result") for e in events)
    timed = cli("submit", "sleep", "-p", "seconds=0.1", "--timeout", "1h30m", gateway=mesh.gateway_address)
    assert timed.returncode == 0, timed.stderr  # the CLI's own parser used to refuse 1h30m
    job_id = timed.stdout.strip()
    assert cli("watch", job_id, gateway=mesh.gateway_address).returncode == 0
    jobs = cli("jobs", "--json", gateway=mesh.gateway_address)
    assert job_id in {j["job_id"] for j in json.loads(jobs.stdout)}
    bad = cli("submit", "heat-demand", "-p", "buildings=-3", gateway=mesh.gateway_address)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "params.buildings" in bad.stderr
    unknown = cli("watch", "no-such-job", gateway=mesh.gateway_address)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr


def test_new_worker_type_appears_in_watch_stream_without_restart(mesh, gateway):
    gateway_pid = next(p.popen.pid for p in mesh.processes if p.name == "gateway")
    stream = gateway.WatchWorkflowTypes(gateway_pb2.WatchWorkflowTypesRequest(), timeout=60)
    seen: list[gateway_pb2.WorkflowTypeChange] = []
    threading.Thread(target=collect, args=(stream, seen), daemon=True).start()

    def added():
        return [
            c
            for c in seen
            if c.kind == gateway_pb2.WorkflowTypeChange.KIND_ADDED  # noqa: E731
            and c.type.type.name == "kpi-peak-ratio"
            and not c.initial
        ]

    kpi = mesh.add_worker("workmesh.workers.examples.kpi:worker")
    try:
        eventually(added, timeout=60)  # a worker process starting under load
        assert "kpi-peak-ratio" in type_names(gateway)
        job_id = submit(gateway, "kpi-peak-ratio", peak=10, average=4)
        result = next(e.result for e in watch(gateway, job_id) if e.WhichOneof("payload") == "result")
        assert MessageToDict(result.outputs) == {"ratio": 2.5}
        assert next(p.popen.pid for p in mesh.processes if p.name == "gateway") == gateway_pid
    finally:
        stream.cancel()
        mesh.stop_one(kpi)
    eventually(lambda: "kpi-peak-ratio" not in type_names(gateway), timeout=15)


def test_sigterm_drains_a_worker_with_a_running_job(fresh_mesh):
    worker = fresh_mesh.add_worker(BASIC)
    fresh_mesh.wait_for_types()
    with grpc.insecure_channel(fresh_mesh.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        job_id = submit(stub, "sleep", seconds=2, steps=4)
        eventually(
            lambda: stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id)).status == common_pb2.JOB_STATUS_RUNNING,
            timeout=15,
        )
        worker.popen.send_signal(signal.SIGTERM)
        assert final_status(watch(stub, job_id)) == SUCCEEDED
        assert worker.popen.wait(30) == 0, "the drained worker exits cleanly"
        eventually(lambda: "sleep" not in type_names(stub), timeout=15)


def test_sigkilled_worker_stops_receiving_jobs(fresh_mesh):
    doomed_port, survivor_port = free_port(), free_port()
    doomed = fresh_mesh.add_worker(BASIC, port=doomed_port)
    fresh_mesh.add_worker(BASIC, port=survivor_port)
    fresh_mesh.wait_for_types()
    with grpc.insecure_channel(f"127.0.0.1:{doomed_port}") as channel:
        doomed_id = worker_pb2_grpc.WorkerStub(channel).Describe(worker_pb2.DescribeRequest(), timeout=5).instance_id
    with grpc.insecure_channel(fresh_mesh.gateway_address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        doomed.popen.send_signal(signal.SIGKILL)
        doomed.popen.wait(10)
        eventually(lambda: type_names(stub)["echo"].healthy_instances == 1, timeout=20)
        for _ in range(10):
            job_id = submit(stub, "echo", message="after")
            assert final_status(watch(stub, job_id)) == SUCCEEDED
            job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=5)
            assert job.instance_id != doomed_id
