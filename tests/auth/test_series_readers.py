"""External InfluxDB readers end to end, with real processes: a mesh with authentication on
whose results service stores series in a real influxd with ``auth-enabled = true``.
``workmesh series grant JOB --reader NAME`` (through the gateway, by the job's owner) prints a
user that reads that job's database and nothing else; another subject is refused; revoking
and deleting the job remove the user; both grants are in the audit log."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from tests.auth.test_audit import cli
from tests.auth.test_results_scoping import CALLERS, ENV, SERIES, metadata, run_job
from tests.fixtures.influx import INFLUX_ADMIN, influxd_auth  # noqa: F401 - session fixture
from tests.results.test_readers import influx_http, select, users
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.e2e


def test_series_grant_revoke_and_delete_through_the_cli(tmp_path, influxd_auth):  # noqa: F811
    url = influxd_auth.url
    env = {
        **ENV,
        "WORKMESH_RESULTS_STORE": "influx",
        "INFLUX_URL": url,
        "INFLUX_USERNAME": INFLUX_ADMIN[0],
        "INFLUX_PASSWORD": INFLUX_ADMIN[1],
    }
    with DevMesh(workers=(), results=True, data_dir=tmp_path, log_dir=tmp_path, env=env) as mesh:
        mesh.add_worker(SERIES)
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            gateway = gateway_pb2_grpc.GatewayStub(channel)
            deadline = time.monotonic() + 30
            while not any(
                t.type.name == "series-async" and t.healthy_instances
                for t in gateway.ListWorkflowTypes(
                    gateway_pb2.ListWorkflowTypesRequest(), timeout=5, metadata=metadata(CALLERS["admin"])
                ).types
            ):
                assert time.monotonic() < deadline, "the worker's types were not listed"
                time.sleep(0.1)
            job, result = run_job(gateway, CALLERS["owner"])
            other, _ = run_job(gateway, CALLERS["same_tenant"])
            gw = ("--gateway", mesh.gateway_address)

            granted = cli("series", "grant", job, "--reader", "dash", *gw, "--json", token=CALLERS["owner"])
            assert granted.returncode == 0, granted.stderr
            reply = json.loads(granted.stdout)
            assert reply["store"] == "influxdb" and reply["database"] == job == result.series[0].database
            assert reply["host"] == url == result.series[0].host
            user, password = reply["username"], reply["password"]
            assert select(url, user, password, job)[0] == 200
            assert select(url, user, password, other)[0] == 403
            assert influx_http(url, "/write", user, password, b"m v=1 1", db=job)[0] == 403

            refused = cli("series", "grant", job, "--reader", "x", *gw, token=CALLERS["same_tenant"])
            assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr, refused.stderr
            unknown = cli("series", "grant", "no-such-job", "--reader", "x", *gw, token=CALLERS["owner"])
            assert unknown.returncode != 0 and "NOT_FOUND" in unknown.stderr, unknown.stderr
            bad = cli("series", "grant", job, "--reader", "Bad Name", *gw, token=CALLERS["owner"])
            assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr and "reader" in bad.stderr
            again = cli("series", "grant", job, "--reader", "dash", *gw, token=CALLERS["owner"])
            assert again.returncode != 0 and "ALREADY_EXISTS" in again.stderr, again.stderr

            revoked = cli("series", "revoke", job, "--reader", "dash", *gw, token=CALLERS["owner"])
            assert revoked.returncode == 0, revoked.stderr
            assert select(url, user, password, job)[0] == 401

            regranted = cli("series", "grant", job, "--reader", "dash", *gw, "--json", token=CALLERS["owner"])
            assert regranted.returncode == 0, regranted.stderr
            assert user in users(url)
            gateway.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=job), timeout=30, metadata=metadata(CALLERS["owner"]))
            assert user not in users(url)

            entries = (
                admin_pb2_grpc.AuditStub(channel)
                .ListAudit(admin_pb2.ListAuditRequest(), timeout=10, metadata=metadata(CALLERS["admin"]))
                .entries
            )
            mine = [(e.action, e.subject) for e in entries if e.target == job]
            assert ("series.grant", "alice") in mine and ("series.revoke", "alice") in mine, mine
            assert all(password not in e.detail for e in entries)
