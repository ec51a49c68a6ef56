"""Sharing with real processes and authentication on (registry, gateway, results, a worker):
alice shares a job and a label value with bob through the CLI (``workmesh share``, ``shares``,
``unshare``); bob then sees and reads the jobs and their series — straight from the results
service and through the HTTP API, comparison included, the results service asking the gateway about the shares — cannot
cancel or delete without manage, and is refused again once the shares are taken back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest

from tests.auth.keys import hs256
from tests.auth.test_results_scoping import DENIED, ENV, OK, SERIES, USER, http_get, metadata
from tests.support import eventually
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, results_pb2, results_pb2_grpc

pytestmark = pytest.mark.e2e
ALICE = hs256(sub="alice", tenant="acme", scope=USER)
BOB = hs256(sub="bob", tenant="acme", scope=USER)


def status(call) -> tuple[grpc.StatusCode, str]:
    """The status of a unary call, or of a server stream read to its end."""
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return OK, ""


def cli(mesh, *args: str, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKMESH_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args, "--gateway", mesh.gateway_address],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def run_job(gateway, labels: dict[str, str]) -> str:
    params = {"steps": common_pb2.ParamValue(int_value=12)}
    request = gateway_pb2.SubmitJobRequest(workflow_type="series-async", params=params, labels=labels)
    job_id = gateway.SubmitJob(request, timeout=10, metadata=metadata(ALICE)).job.job_id
    events = list(gateway.WatchJob(gateway_pb2.WatchJobRequest(job_id=job_id), timeout=90, metadata=metadata(ALICE)))
    assert [e for e in events if e.WhichOneof("payload") == "result"], events[-1]
    return job_id


def test_alice_shares_with_bob_and_takes_it_back(tmp_path):
    with DevMesh(workers=(), results=True, data_dir=tmp_path, log_dir=tmp_path, env=ENV) as mesh:
        mesh.add_worker(SERIES)
        with (
            grpc.insecure_channel(mesh.gateway_address) as gw_channel,
            grpc.insecure_channel(mesh.results_address) as results_channel,
        ):
            gateway = gateway_pb2_grpc.GatewayStub(gw_channel)
            results = results_pb2_grpc.ResultsStub(results_channel)

            def types_listed() -> bool:
                reply = gateway.ListWorkflowTypes(gateway_pb2.ListWorkflowTypesRequest(), metadata=metadata(ALICE))
                return any(t.type.name == "series-async" and t.healthy_instances for t in reply.types)

            eventually(types_listed, timeout=30)
            single = run_job(gateway, {})
            north = [run_job(gateway, {"project": "north"}) for _ in range(2)]

            def bob_reads(job_ids: list[str]) -> tuple[grpc.StatusCode, str]:
                request = results_pb2.ReadSeriesRequest(job_ids=job_ids)
                return status(lambda: results.ReadSeries(request, timeout=10, metadata=metadata(BOB)))

            def bob_lists(job_id: str) -> tuple[grpc.StatusCode, str]:
                request = results_pb2.ListSeriesRequest(job_id=job_id)
                return status(lambda: results.ListSeries(request, timeout=10, metadata=metadata(BOB)))

            def bob_gets(job_id: str) -> tuple[grpc.StatusCode, str]:
                request = gateway_pb2.GetJobRequest(job_id=job_id)
                return status(lambda: gateway.GetJob(request, timeout=10, metadata=metadata(BOB)))

            for job in (single, *north):
                assert bob_gets(job)[0] == DENIED and bob_lists(job)[0] == DENIED

            shared = cli(mesh, "share", single, "--with", "bob", "--json", token=ALICE)
            assert shared.returncode == 0, shared.stderr
            job_share = json.loads(shared.stdout)
            assert job_share["job_id"] == single and job_share["grantee"] == "bob"
            by_label = cli(mesh, "share", "--label", "project=north", "--with", "bob", "--json", token=ALICE)
            assert by_label.returncode == 0, by_label.stderr
            label_share = json.loads(by_label.stdout)
            bad = cli(mesh, "share", "--label", "north", "--with", "bob", token=ALICE)
            assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr and "label" in bad.stderr
            not_owner = cli(mesh, "share", single, "--with", "erin", token=BOB)
            assert not_owner.returncode != 0 and "PERMISSION_DENIED" in not_owner.stderr

            listed = cli(mesh, "shares", "--json", token=BOB)
            assert listed.returncode == 0, listed.stderr
            assert {s["share_id"] for s in json.loads(listed.stdout)} == {
                job_share["share_id"],
                label_share["share_id"],
            }
            table = cli(mesh, "shares", token=ALICE)
            assert table.returncode == 0 and "project=north" in table.stdout
            jobs = cli(mesh, "jobs", "--shared", "--json", token=BOB)
            assert jobs.returncode == 0, jobs.stderr
            assert {j["job_id"] for j in json.loads(jobs.stdout)} == {single, *north}

            for job in (single, *north):
                assert bob_gets(job) == (OK, ""), job
                assert bob_lists(job) == (OK, ""), job
            assert bob_reads([single, *north]) == (OK, "")  # a comparison across both shares
            # the HTTP API: the same rules (its series routes check GetJob, then read by capability)
            code, body = http_get(mesh, "/v1/jobs?shared=true", BOB)
            assert code == 200 and {j["jobId"] for j in body["jobs"]} == {single, *north}
            assert http_get(mesh, f"/v1/series?job={single}&job={north[0]}", BOB)[0] == 200
            code, details = status(
                lambda: gateway.CancelJob(
                    gateway_pb2.CancelJobRequest(job_id=single), timeout=10, metadata=metadata(BOB)
                )
            )
            assert code == DENIED and "reading only" in details
            delete = cli(mesh, "delete", north[0], token=BOB)
            assert delete.returncode != 0 and "PERMISSION_DENIED" in delete.stderr

            for share in (job_share, label_share):
                taken = cli(mesh, "unshare", share["share_id"], token=ALICE)
                assert taken.returncode == 0, taken.stderr
            for job in (single, *north):
                assert bob_gets(job)[0] == DENIED
                code, details = bob_lists(job)
                assert code == DENIED and job in details
            code, details = bob_reads([single, north[0]])
            assert code == DENIED and "job_ids[0]" in details
            assert http_get(mesh, f"/v1/series?job={single}&job={north[0]}", BOB)[0] == 403
            assert http_get(mesh, "/v1/jobs?shared=true", BOB)[1].get("jobs", []) == []
            assert json.loads(cli(mesh, "shares", "--json", token=BOB).stdout) == []
