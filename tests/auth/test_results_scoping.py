"""The results service with authentication on, with real registry, gateway, results and worker
processes: workers write series only with the capability of the attempt they run; ListSeries and
ReadSeries (comparisons too) follow the jobs' rules, walked with every kind of caller; forged,
expired and other jobs' capabilities are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest

from tests.auth.keys import SECRET, hs256
from tests.support import run
from workmesh.services.clients import ResultsClient
from workmesh.services.core.auth import SeriesCapabilities
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
)

pytestmark = pytest.mark.e2e
SERIES = "tests.series.workflows:worker"
KEY = "w" * 40  # WORKMESH_SERIES_KEY shared by the gateway and the results service
ENV = {"WORKMESH_AUTH": "on", "WORKMESH_JWT_SECRET": SECRET, "WORKMESH_SERIES_KEY": KEY}
USER = "types:read jobs:submit jobs:read series:read"
CALLERS = {
    "nobody": None,
    "owner": hs256(sub="alice", tenant="acme", scope=USER),
    "other_tenant": hs256(sub="carol", tenant="globex", scope=USER),
    "same_tenant": hs256(sub="bob", tenant="acme", scope=USER),
    "no_scope": hs256(sub="alice", tenant="acme", scope="jobs:read"),
    "manager": hs256(sub="ops", tenant="acme", scope=USER + " jobs:manage"),
    "admin": hs256(sub="root", tenant="platform", scope="admin"),
}
OK, UNAUTH, DENIED, MISSING = (
    grpc.StatusCode.OK,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
)
# caller → status of ListSeries/ReadSeries on alice's job
ON_JOB = {
    "nobody": UNAUTH,
    "owner": OK,
    "other_tenant": MISSING,
    "same_tenant": DENIED,
    "no_scope": DENIED,
    "manager": OK,
    "admin": OK,
}


def metadata(token: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")] if token else []


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results-auth")
    # No workers at start: DevMesh waits for them with an unauthenticated ListWorkflowTypes.
    with DevMesh(workers=(), results=True, data_dir=tmp, log_dir=tmp, env=ENV) as started:
        started.add_worker(SERIES)
        with grpc.insecure_channel(started.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            deadline = time.monotonic() + 30
            while True:
                types = stub.ListWorkflowTypes(
                    gateway_pb2.ListWorkflowTypesRequest(), timeout=5, metadata=metadata(CALLERS["admin"])
                ).types
                if any(t.type.name == "series-async" and t.healthy_instances for t in types):
                    break
                assert time.monotonic() < deadline, "the worker's types were not listed"
                time.sleep(0.1)
        yield started


@pytest.fixture(scope="module")
def gateway(mesh):
    with grpc.insecure_channel(mesh.gateway_address) as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)


@pytest.fixture(scope="module")
def results(mesh):
    with grpc.insecure_channel(mesh.results_address) as channel:
        yield results_pb2_grpc.ResultsStub(channel)


def run_job(gateway, token: str, **flags: bool) -> tuple[str, common_pb2.JobResult]:
    params = {"steps": common_pb2.ParamValue(int_value=24)}
    params.update({k: common_pb2.ParamValue(bool_value=v) for k, v in flags.items()})
    request = gateway_pb2.SubmitJobRequest(workflow_type="series-async", params=params)
    job_id = gateway.SubmitJob(request, timeout=10, metadata=metadata(token)).job.job_id
    events = list(gateway.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90, metadata=metadata(token)))
    ends = [e for e in events if e.WhichOneof("payload") in ("result", "error")]
    assert ends and ends[-1].WhichOneof("payload") == "result", ends
    return job_id, ends[-1].result


@pytest.fixture(scope="module")
def jobs(gateway):
    """One job each of alice and bob (tenant acme) and carol (tenant globex), with series."""
    made = {}
    for name, caller in (("alice", "owner"), ("bob", "same_tenant"), ("carol", "other_tenant")):
        made[name] = run_job(gateway, CALLERS[caller])
    return made


def status(call) -> tuple[grpc.StatusCode, str]:
    try:
        result = call()
        if not isinstance(result, results_pb2.ListSeriesResponse):
            list(result)  # a stream: read it to the end
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return OK, ""


def list_series(results, job_id: str, token: str | None):
    return lambda: results.ListSeries(
        results_pb2.ListSeriesRequest(job_id=job_id), timeout=10, metadata=metadata(token)
    )


def read_series(results, job_ids: list[str], token: str | None):
    return lambda: results.ReadSeries(
        results_pb2.ReadSeriesRequest(job_ids=job_ids), timeout=10, metadata=metadata(token)
    )


def test_workers_wrote_their_jobs_series_with_the_attempts_capability(jobs):
    for _job_id, result in jobs.values():
        assert {(r.measurement, r.field) for r in result.series} == {("heat", "Q"), ("heat", "T"), ("outdoor", "T")}


@pytest.mark.parametrize("rpc", ["ListSeries", "ReadSeries"])
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_reads_follow_the_job_rules(results, jobs, rpc, caller):
    job_id = jobs["alice"][0]
    token = CALLERS[caller]
    call = list_series(results, job_id, token) if rpc == "ListSeries" else read_series(results, [job_id], token)
    code, details = status(call)
    assert code == ON_JOB[caller], (caller, rpc, details)
    if code == MISSING:  # worded as a job that does not exist: its existence does not leak
        missing = list_series if rpc == "ListSeries" else (lambda r, j, t: read_series(r, [j], t))
        _, unknown = status(missing(results, "no-such-job", token))
        assert details.replace(job_id, "X") == unknown.replace("no-such-job", "X")
    if code == DENIED and caller == "no_scope":
        assert "series:read" in details
    if token:
        assert token not in details


def test_a_comparison_fails_as_a_whole_naming_the_job_the_caller_may_not_read(results, jobs):
    alice, bob, carol = (jobs[name][0] for name in ("alice", "bob", "carol"))
    code, details = status(read_series(results, [alice, bob], CALLERS["owner"]))
    assert code == DENIED and bob in details and "job_ids[1]" in details
    code, details = status(read_series(results, [alice, carol], CALLERS["owner"]))
    assert code == MISSING and carol in details and "job_ids[1]" in details
    assert status(read_series(results, [alice, bob], CALLERS["manager"])) == (OK, "")
    assert status(read_series(results, [alice, bob, carol], CALLERS["admin"])) == (OK, "")


async def write(mesh, job_id: str, capability: str) -> list:
    async with ResultsClient(mesh.results_address) as client:
        writer = client.writer(job_id, capability=capability)
        try:
            await writer.series("probe").write(np.arange(3), v=np.ones(3))
            return await writer.close()
        except BaseException:
            await writer.abort()
            raise


def write_status(mesh, job_id: str, capability: str) -> tuple[grpc.StatusCode, str]:
    try:
        run(write(mesh, job_id, capability))
    except WorkmeshError as exc:
        return exc.code, exc.message
    return OK, ""


def test_writes_need_the_capability_of_that_job(mesh, results, jobs):
    caps = SeriesCapabilities(KEY)
    alice, bob = jobs["alice"][0], jobs["bob"][0]
    refused = {
        "no capability": ("", UNAUTH, "missing series write capability"),
        "a user token": (CALLERS["owner"], UNAUTH, "invalid signature"),
        "forged": (SeriesCapabilities("f" * 40).issue(alice, 1, tenant="acme", subject="alice"), UNAUTH, "signature"),
        "expired": (caps.issue(alice, 1, tenant="acme", subject="alice", lifetime=-60), UNAUTH, "expired"),
        "another job's": (caps.issue(bob, 1, tenant="acme", subject="bob"), DENIED, f"for job {bob!r}"),
        "the gateway's delete": (caps.deleting(alice), DENIED, "allows 'delete'"),
    }
    for name, (capability, code, reason) in refused.items():
        got, details = write_status(mesh, alice, capability)
        assert (got, reason in details) == (code, True), (name, details)
        if capability:
            assert capability not in details
    # Nothing refused reached the store: alice's job still has exactly its own series.
    listed = results.ListSeries(results_pb2.ListSeriesRequest(job_id=alice), metadata=metadata(CALLERS["owner"]))
    assert {s.key.measurement for s in listed.series} == {"heat", "outdoor"}
    # A valid capability writes, and records the owner it names: the series follow that job.
    assert write_status(mesh, "fresh-job", caps.issue("fresh-job", 1, tenant="acme", subject="alice")) == (OK, "")
    assert status(list_series(results, "fresh-job", CALLERS["owner"])) == (OK, "")
    assert status(list_series(results, "fresh-job", CALLERS["same_tenant"]))[0] == DENIED


def test_a_retried_attempt_restarts_with_its_own_capability_and_supersedes_the_first(mesh, gateway, results):
    # attempt 1 stores series and fails (retryable); attempt 2 clears them and writes anew
    job_id, result = run_job(gateway, CALLERS["owner"], fail_first=True)
    assert result.series and all(r.count == 24 for r in result.series if r.measurement == "heat")
    caps = SeriesCapabilities(KEY)
    code, details = write_status(mesh, job_id, caps.issue(job_id, 1, tenant="acme", subject="alice"))
    assert code == DENIED and "attempt 2 has superseded" in details


def test_only_the_gateway_deletes_a_jobs_series(mesh, gateway, results, jobs):
    caps = SeriesCapabilities(KEY)
    carol = jobs["carol"][0]
    token = CALLERS["other_tenant"]
    for capability, code in ((None, UNAUTH), (caps.issue(carol, 1, tenant="globex", subject="carol"), DENIED)):
        md = [("workmesh-series-capability", capability)] if capability else metadata(token)
        got, _ = status(lambda md=md: results.DeleteSeries(results_pb2.DeleteSeriesRequest(job_id=carol), metadata=md))
        assert got == code
    assert status(list_series(results, carol, token)) == (OK, "")
    gateway.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=carol), timeout=30, metadata=metadata(token))
    code, details = status(list_series(results, carol, token))
    assert code == MISSING and "deleted" in details


def http_get(mesh, path: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{mesh.http_port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_http_series_routes_read_with_the_gateways_capability_api_tokens_too(mesh, gateway, jobs):
    alice, bob, carol = jobs["alice"][0], jobs["bob"][0], jobs["carol"][0]
    code, body = http_get(mesh, f"/v1/series?job={alice}", CALLERS["owner"])
    assert code == 200 and {s["measurement"] for s in body["series"]} == {"heat", "outdoor"}
    assert http_get(mesh, f"/v1/jobs/{alice}/series", CALLERS["owner"])[0] == 200
    assert http_get(mesh, f"/v1/series?job={alice}&job={bob}", CALLERS["owner"])[0] == 403
    assert http_get(mesh, f"/v1/series?job={alice}&job={bob}", CALLERS["manager"])[0] == 200
    with grpc.insecure_channel(mesh.gateway_address) as channel:
        made = admin_pb2_grpc.TokenAdminStub(channel).CreateToken(
            admin_pb2.CreateTokenRequest(tenant="acme", name="ops", scopes=["jobs:read", "jobs:manage", "series:read"]),
            metadata=metadata(CALLERS["admin"]),
        )
    assert http_get(mesh, f"/v1/series?job={alice}&job={bob}", made.token)[0] == 200
    assert http_get(mesh, f"/v1/series?job={alice}&job={carol}", made.token)[0] == 404


def test_reads_with_a_capability_need_the_gateways_read_capability_of_every_job(results, jobs):
    caps = SeriesCapabilities(KEY)
    alice, bob = jobs["alice"][0], jobs["bob"][0]

    def read(job_ids, capability):
        md = [("workmesh-series-capability", capability)]
        return status(lambda: results.ReadSeries(results_pb2.ReadSeriesRequest(job_ids=job_ids), metadata=md))

    assert read([alice, bob], caps.reading([alice, bob])) == (OK, "")
    code, details = read([alice, bob], caps.reading([alice]))
    assert code == DENIED and f"does not name job {bob!r}" in details
    assert read([alice], caps.issue(alice, 1, tenant="acme", subject="alice"))[0] == DENIED  # a write one
    assert read([alice], SeriesCapabilities("f" * 40).reading([alice]))[0] == UNAUTH
    assert read([alice], caps.issue(alice, 0, tenant="", subject="", op="read", jobs=[alice], lifetime=-60)) == (
        UNAUTH,
        "the series capability has expired",
    )


def series_cli(mesh, *args: str, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKMESH_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", "series", "--results", mesh.results_address, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_series_cli_sends_its_token(mesh, jobs):
    alice, bob = jobs["alice"][0], jobs["bob"][0]
    listed = series_cli(mesh, alice, "--json", token=CALLERS["owner"])
    assert listed.returncode == 0, listed.stderr
    assert {row["measurement"] for row in json.loads(listed.stdout)} == {"heat", "outdoor"}
    refused = series_cli(mesh, alice, bob, "--csv", "--field", "T", token=CALLERS["owner"])
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr and bob in refused.stderr
    assert CALLERS["owner"] not in refused.stderr
