"""The mesh end to end once more with authentication and TLS on: real registry, results,
gateway and worker processes, each serving TLS with a certificate made in the test and calling
the others over verified TLS; the gateway and the results service verify HS256 JWTs. A job that
writes series is submitted and watched, its series are read back; a call without a token is
UNAUTHENTICATED and a plaintext connection to any service fails. A handler's steps run too: the
worker calls RunStep over TLS with its attempt's capability, and the child jobs belong to the
parent's owner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.auth.keys import SECRET, hs256
from tests.series.workflows import profile
from tests.support import free_port, run
from tests.tls.certs import CA
from workmesh.services.clients import ResultsClient
from workmesh.services.core.auth import CAPABILITY_METADATA, SeriesCapabilities, with_bearer
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.core.tls import TlsConfig
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, results_pb2, results_pb2_grpc

pytestmark = pytest.mark.e2e
SERIES = "tests.series.workflows:worker"
STEPS = "tests.steps.pipeline:worker"  # pipeline: two echo steps and one of an unknown type
SCOPES = "types:read jobs:submit jobs:read series:read"


@pytest.fixture(scope="module")
def secure_mesh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mesh-auth-tls")
    ca = CA(tmp)
    pair = ca.issue("mesh")  # SANs 127.0.0.1 and localhost: every process serves with it
    env = {
        "WORKMESH_TLS_CERT": str(pair.cert),
        "WORKMESH_TLS_KEY": str(pair.key),
        "WORKMESH_TLS_CA": str(ca.pem),  # channels between services verify it; the registry's checks too
        # ... for this name (as in docker-compose.yml), and the registrations carry it as TLSServerName.
        "WORKMESH_TLS_SERVER_NAME": "mesh",
        "WORKMESH_AUTH": "on",
        "WORKMESH_JWT_SECRET": SECRET,
        "WORKMESH_SERIES_KEY": "k" * 40,
    }
    token = hs256(sub="alice", tenant="acme", scope=SCOPES)
    with DevMesh(
        workers=(),
        results=True,
        http_port=None,
        data_dir=tmp,
        log_dir=tmp,
        env=env,
        token=token,
        ca_file=str(ca.pem),
    ) as mesh:
        mesh.add_worker(SERIES, port=free_port())  # a known port: the plaintext test calls it
        mesh.add_worker(STEPS, port=free_port())
        mesh.wait_for_types()  # over TLS, with the token
        yield mesh, ca, token


def tls_channel(address: str, ca: CA, token: str = "") -> grpc.Channel:
    channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(ca.pem.read_bytes()))
    return with_bearer(channel, token)


def test_a_job_writing_series_runs_and_its_series_read_back_over_tls_with_a_token(secure_mesh):
    mesh, ca, token = secure_mesh
    with tls_channel(mesh.gateway_address, ca, token) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = gateway_pb2.SubmitJobRequest(
            workflow_type="series-async",
            params={"steps": common_pb2.ParamValue(int_value=30), "scale": common_pb2.ParamValue(float_value=2.0)},
        )
        job_id = stub.SubmitJob(request, timeout=10).job.job_id
        events = list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90))
    statuses = [e.status.status for e in events if e.WhichOneof("payload") == "status"]
    assert statuses[-1] == common_pb2.JOB_STATUS_SUCCEEDED, [e for e in events if e.WhichOneof("payload") == "error"]
    result = next(e.result for e in events if e.WhichOneof("payload") == "result")
    assert {(r.measurement, r.field): r.count for r in result.series} == {
        ("heat", "Q"): 30,
        ("heat", "T"): 30,
        ("outdoor", "T"): 30,
    }

    async def read():
        async with ResultsClient(mesh.results_address, tls=TlsConfig(ca_file=str(ca.pem)), token=token) as client:
            return await client.read(job_id, measurement="heat")

    (heat,) = run(read())
    ts, q, t = profile(30, 2.0)
    np.testing.assert_array_equal(heat.fields["Q"], q)
    np.testing.assert_array_equal(heat.fields["T"], t)
    np.testing.assert_array_equal(heat.timestamps, ts.astype("datetime64[ns]").astype(np.int64))

    # The CLI over TLS with --ca and --token finds the same job.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKMESH_TLS_", "WORKMESH_TOKEN"))}
    shown = subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", "job", job_id, "--json"]
        + ["--gateway", mesh.gateway_address, "--ca", str(ca.pem), "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    assert '"JOB_STATUS_SUCCEEDED"' in shown.stdout


def test_without_a_token_calls_are_unauthenticated(secure_mesh):
    mesh, ca, _ = secure_mesh
    with tls_channel(mesh.gateway_address, ca) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        for call in (
            lambda: stub.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), timeout=10),
            lambda: stub.SubmitJob(gateway_pb2.SubmitJobRequest(workflow_type="series-async"), timeout=10),
            lambda: list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id="any"), timeout=10)),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
    with tls_channel(mesh.results_address, ca) as channel:
        with pytest.raises(grpc.RpcError) as err:
            results_pb2_grpc.ResultsStub(channel).ListSeries(results_pb2.ListSeriesRequest(job_id="any"), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()

    async def read_without_token():
        async with ResultsClient(mesh.results_address, tls=TlsConfig(ca_file=str(ca.pem))) as client:
            return await client.read("any")

    with pytest.raises(WorkmeshError) as failed:
        run(read_without_token())
    assert failed.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_connections_to_every_service_fail(secure_mesh):
    mesh, ca, token = secure_mesh
    workers = [p.address for p in mesh.processes if p.name == "worker"]
    assert workers, "the mesh runs a worker"
    for address in (mesh.gateway_address, mesh.results_address, *workers):
        # Over TLS the health service answers (it needs no token: Consul's check carries none) ...
        with tls_channel(address, ca) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # ... and so does `workmesh health` (the containers' healthcheck) with WORKMESH_TLS_CA ...
        env = {**os.environ, "WORKMESH_TLS_CA": str(ca.pem)}
        health = subprocess.run(
            [sys.executable, "-m", "workmesh.services.cli", "health", address],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert health.returncode == 0 and "SERVING" in health.stdout, health.stderr
        # ... in plaintext, not even with a valid token, nothing does.
        metadata = (("authorization", f"Bearer {token}"),)
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as err:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, address
            if address == mesh.gateway_address:
                with pytest.raises(grpc.RpcError) as err:
                    gateway_pb2_grpc.GatewayStub(channel).ListWorkflowTypes(
                        gateway_pb2.ListWorkflowTypesRequest(), timeout=5, metadata=metadata
                    )
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def run_step(stub, job_id: str, attempt: int = 1, metadata=None) -> grpc.RpcError:
    request = gateway_pb2.RunStepRequest(
        parent_job_id=job_id, parent_attempt=attempt, step_name="x", workflow_type="echo"
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.RunStep(request, timeout=10, metadata=metadata)
    return refused.value


def test_steps_run_over_tls_with_the_attempts_capability_as_the_parents_owner(secure_mesh):
    mesh, ca, token = secure_mesh
    with tls_channel(mesh.gateway_address, ca, token) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        job_id = stub.SubmitJob(gateway_pb2.SubmitJobRequest(workflow_type="pipeline"), timeout=10).job.job_id
        events = list(stub.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90))
        statuses = [e.status.status for e in events if e.WhichOneof("payload") == "status"]
        errors = [e for e in events if e.WhichOneof("payload") == "error"]
        assert statuses[-1] == common_pb2.JOB_STATUS_SUCCEEDED, errors
        outputs = MessageToDict(next(e.result for e in events if e.WhichOneof("payload") == "result").outputs)
        assert outputs["second"] == "hi!", "step two got step one's output"
        assert outputs["unknown"].startswith("NOT_FOUND") and "echo" in outputs["unknown"], outputs
        children = [e.step.child_job_id for e in events if e.WhichOneof("payload") == "step" and e.step.child_job_id]
        assert len(set(children)) == 2
        for child_id in set(children):
            child = stub.GetJob(gateway_pb2.GetJobRequest(job_id=child_id), timeout=10)
            assert (child.tenant, child.user, child.parent_id) == ("acme", "alice", job_id)
            assert child.status == common_pb2.JOB_STATUS_SUCCEEDED
        listed = {j.job_id for j in stub.ListJobs(gateway_pb2.ListJobsRequest(page_size=100), timeout=10).jobs}
        assert set(children) <= listed

    # workmesh job shows the owner its step tree: alice may list neither all tenants' jobs nor
    # the tenant's (no admin, no jobs:manage), so the CLI lists the steps as her own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKMESH_TLS_", "WORKMESH_TOKEN"))}
    shown = subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", "job", job_id, "--json"]
        + ["--gateway", mesh.gateway_address, "--ca", str(ca.pem), "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    tree = json.loads(shown.stdout)["steps"]
    assert sorted(n["job_id"] for n in tree) == sorted(set(children))
    assert all(n["status"] == "SUCCEEDED" and n["steps"] == [] for n in tree), tree

    with tls_channel(mesh.gateway_address, ca, token) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        # A caller's token does not start steps, not even the owner's; nor a forged capability.
        refused = run_step(stub, job_id)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "attempt's capability" in refused.details()
    with tls_channel(mesh.gateway_address, ca) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        forged = SeriesCapabilities("f" * 40).issue(job_id, 1, tenant="acme", subject="alice")
        refused = run_step(stub, job_id, metadata=((CAPABILITY_METADATA, forged),))
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED and "invalid signature" in refused.details()
        other = SeriesCapabilities("k" * 40).issue("another-job", 1, tenant="acme", subject="alice")
        refused = run_step(stub, job_id, metadata=((CAPABILITY_METADATA, other),))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "'another-job'" in refused.details()
        mine = SeriesCapabilities("k" * 40).issue(job_id, 1, tenant="acme", subject="alice")
        refused = run_step(stub, job_id, metadata=((CAPABILITY_METADATA, mine),))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.details()  # the parent has ended
        assert "only a running job starts steps" in refused.details()

    # Another tenant does not see the children (NOT_FOUND, as for no job), nor lists them.
    with tls_channel(mesh.gateway_address, ca, hs256(sub="mallory", tenant="umbrella", scope=SCOPES)) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        for child_id in set(children):
            with pytest.raises(grpc.RpcError) as hidden:
                stub.GetJob(gateway_pb2.GetJobRequest(job_id=child_id), timeout=10)
            assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        listed = {j.job_id for j in stub.ListJobs(gateway_pb2.ListJobsRequest(page_size=100), timeout=10).jobs}
        assert not listed & {job_id, *children}
