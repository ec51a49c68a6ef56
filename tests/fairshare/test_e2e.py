"""Fair share end to end with real processes: a light user is not starved behind a heavy one,
the CLI shows the queue and estimates, SIGHUP reloads the shares file (a bad one changes nothing)."""

from __future__ import annotations

import json
import signal

import grpc
import pytest

from tests.fairshare.support import BASIC, all_terminal, cli, job, started, submit
from tests.support import eventually
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e


@pytest.fixture
def mesh(tmp_path):
    shares = tmp_path / "shares.toml"
    shares.write_text("[tenants.t]\nweight = 1\n")
    with DevMesh(
        workers=(), results=False, data_dir=tmp_path, log_dir=tmp_path, env={"WORKMESH_SHARES_FILE": str(shares)}
    ) as started_mesh:
        started_mesh.add_worker(BASIC, "--capacity", "2")
        started_mesh.wait_for_types()
        started_mesh.shares = shares
        yield started_mesh


def test_light_user_is_not_starved_and_the_cli_shows_queue_and_estimate(mesh):
    address = mesh.gateway_address
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        heavy = [submit(stub, "heavy", 0.5) for _ in range(20)]
        eventually(lambda: sum(job(stub, j).status == common_pb2.JOB_STATUS_RUNNING for j in heavy) == 2, timeout=30)
        light = [submit(stub, "light", 0.5) for _ in range(3)]
        queue = cli("queue", "sleep", "--json", gateway=address)
        assert queue.returncode == 0, queue.stderr
        view = json.loads(queue.stdout)
        assert view["policy"] == "fair" and view["types"][0]["workflow_type"] == "sleep"
        assert "heavy" in {o["user"] for o in view["types"][0]["owners"]}  # heavy's backlog lasts
        # Light's jobs may be done by now (the CLI starts slowly): its usage is listed all the same.
        assert {"heavy", "light"} <= {o["user"] for o in view["owners"]}
        done = eventually(lambda: all_terminal(stub, heavy + light), timeout=120)
        assert {j.status for j in done.values()} == {common_pb2.JOB_STATUS_SUCCEEDED}
        first_light = min(started(done[j]) for j in light)
        last_light = max(started(done[j]) for j in light)
        # Light had no usage: each of its jobs took the next free slot, ahead of heavy's backlog.
        assert sum(started(done[j]) > first_light for j in heavy) >= 12
        assert sum(started(done[j]) > last_light for j in heavy) >= 10

    estimate = cli("submit", "sleep", "-p", "seconds=0.5", "--user", "light", "--estimate", gateway=address)
    assert estimate.returncode == 0, estimate.stderr
    assert "p50" in estimate.stdout and "finished runs" in estimate.stdout and "expected start" in estimate.stdout
    types = cli("types", "--json", gateway=address)
    info = next(t for t in json.loads(types.stdout) if t["type"]["name"] == "sleep")
    assert info["runtime_runs"] >= 23
    bad = cli("submit", "sleep", "--priority", "urgent", "--estimate", gateway=address)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "priority" in bad.stderr


def test_sighup_reloads_limits_and_a_bad_file_leaves_the_previous_ones(mesh):
    address = mesh.gateway_address
    gateway_proc = next(p for p in mesh.processes if p.name == "gateway")
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        mesh.shares.write_text("[defaults.user]\nmax_queued = 0\n")  # would block every submit
        gateway_proc.popen.send_signal(signal.SIGHUP)
        eventually(lambda: "previous ones stay in force" in gateway_proc.log_path.read_text(), timeout=15)
        blockers = [submit(stub, "ann", 30.0) for _ in range(2)]  # still accepted: no limit in force
        eventually(lambda: all(job(stub, j).status == common_pb2.JOB_STATUS_RUNNING for j in blockers), timeout=30)
        queued = submit(stub, "ann", 0.1)
        mesh.shares.write_text("[defaults.user]\nmax_queued = 1\n")
        gateway_proc.popen.send_signal(signal.SIGHUP)

        def refused():
            try:
                extra = submit(stub, "ann", 0.1)
            except grpc.RpcError as exc:
                return exc
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=extra), timeout=30)
            return None

        exc = eventually(refused, timeout=15, interval=0.2)
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queued" in exc.details() and "is 1 and 1 jobs are queued" in exc.details()
        submit(stub, "bob", 0.1)  # another user has a queue of its own
        for job_id in (*blockers, queued):
            stub.CancelJob(gateway_pb2.CancelJobRequest(job_id=job_id), timeout=30)
