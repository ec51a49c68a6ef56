"""The table walk of every RPC of every service in protos/ (tests/auth/rpc_table.py), with real
registry, gateway, results and worker processes, authentication on: each RPC by every kind of
caller, streams included, asserting the status; every PERMISSION_DENIED names the scope or the
rule; another tenant's job is worded as one that does not exist, and a caller without the scope
is refused the same way for a job that exists and one that does not (the answer never depends
on the job). The RPC list comes from the service descriptors: a new RPC without a row fails.

The Worker service is the one exception walked elsewhere: only the gateway calls it, guarded by
(mutual) TLS rather than caller tokens (tests/tls/test_worker_table.py walks it)."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import time
from pathlib import Path

import grpc
import pytest

import workmesh.v1
from tests.auth.keys import SECRET
from tests.auth.rpc_table import CALLERS, CAPS, LABEL, MISSING, OK, ROWS, SCOPELESS, TOKENS, Row, _series_job
from workmesh.services.core.auth import CAPABILITY_METADATA, SeriesCapabilities
from workmesh.services.devmesh import DevMesh
from workmesh.v1 import admin_pb2 as a
from workmesh.v1 import admin_pb2_grpc, common_pb2, gateway_pb2_grpc, results_pb2_grpc, sharing_pb2_grpc
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import sharing_pb2 as s

pytestmark = pytest.mark.e2e
KEY = "w" * 40  # WORKMESH_SERIES_KEY of the gateway and the results service
ENV = {"WORKMESH_AUTH": "on", "WORKMESH_JWT_SECRET": SECRET, "WORKMESH_SERIES_KEY": KEY}
WORKER_SERVICE = "workmesh.v1.Worker"  # see the module docstring


def every_method() -> set[str]:
    """Every RPC of every service of every .proto file of workmesh.v1 but the Worker's, from the
    generated descriptors (one ``NAME_pb2`` module per ``NAME.proto``)."""
    found = set()
    protos = sorted(Path(workmesh.v1.__file__).parent.glob("*.proto"))
    assert len(protos) >= 6, protos
    for proto in protos:
        module = importlib.import_module(f"workmesh.v1.{proto.stem}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name != WORKER_SERVICE:
                found |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return found


def test_the_table_has_a_row_for_every_rpc_of_every_service():
    methods = every_method()
    assert {name.split("/")[1] for name in methods} == {
        "workmesh.v1.Gateway",
        "workmesh.v1.Sharing",
        "workmesh.v1.GatewayAdmin",
        "workmesh.v1.TokenAdmin",
        "workmesh.v1.Audit",
        "workmesh.v1.Results",
    }
    assert sorted(methods - set(ROWS)) == [], "RPCs without a row in tests/auth/rpc_table.py"
    assert sorted(set(ROWS) - methods) == [], "rows of RPCs that do not exist"
    for name, row in ROWS.items():
        assert set(row.expect) == set(CALLERS), name


def md(token: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")] if token else []


class Ctx:
    """The stubs, alice's job of the table, and makers of fresh targets (as alice, or admin)."""

    def __init__(self, mesh: DevMesh) -> None:
        self.gw_channel = grpc.insecure_channel(mesh.gateway_address)
        self.results_channel = grpc.insecure_channel(mesh.results_address)
        self.gateway = gateway_pb2_grpc.GatewayStub(self.gw_channel)
        self.sharing = sharing_pb2_grpc.SharingStub(self.gw_channel)
        self.gateway_admin = admin_pb2_grpc.GatewayAdminStub(self.gw_channel)
        self.tokens = admin_pb2_grpc.TokenAdminStub(self.gw_channel)
        self.audit = admin_pb2_grpc.AuditStub(self.gw_channel)
        self.results = results_pb2_grpc.ResultsStub(self.results_channel)
        self.caps = SeriesCapabilities(KEY)
        self.counter = itertools.count()
        self.running: list[str] = []
        self.alice = md(TOKENS["owner"])
        self.job = self.finished_job()
        self.bob_job = self._end(
            self.gateway.SubmitJob(_series_job(), timeout=30, metadata=md(TOKENS["same_tenant"])).job.job_id,
            md(TOKENS["same_tenant"]),
        )
        for request, who in (
            (s.ShareJobRequest(label="table=walk", grantee="erin"), self.alice),
            (s.ShareJobRequest(label="table=walk", grantee="fay", manage=True), self.alice),
            (s.ShareJobRequest(label="table=walk", grantee="gus", tenant_wide=True), md(TOKENS["manager"])),
        ):
            self.sharing.ShareJob(request, timeout=10, metadata=who)
        assert LABEL == {"table": "walk"}

    def close(self) -> None:
        self.tidy()
        self.gw_channel.close()
        self.results_channel.close()

    def _end(self, job: str, who: list) -> str:
        list(self.gateway.WatchJob(g.WatchJobRequest(job_id=job), timeout=90, metadata=who))
        return job

    def finished_job(self) -> str:
        return self._end(self.gateway.SubmitJob(_series_job(), timeout=30, metadata=self.alice).job.job_id, self.alice)

    def running_job(self) -> str:
        job = self.gateway.SubmitJob(_series_job(wait_cancel=True), timeout=30, metadata=self.alice).job.job_id
        self.running.append(job)
        deadline = time.monotonic() + 60
        while self.gateway.GetJob(g.GetJobRequest(job_id=job), metadata=self.alice).status != (
            common_pb2.JOB_STATUS_RUNNING
        ):
            assert time.monotonic() < deadline, f"job {job} did not start"
            time.sleep(0.05)
        return job

    def cancelled_job(self) -> str:
        """A job that may be retried (FAILED: retrying it fails again, nothing is left running)."""
        job = self.gateway.SubmitJob(_series_job(fail=True), timeout=30, metadata=self.alice).job.job_id
        return self._end(job, self.alice)

    def tidy(self) -> None:
        """Cancel what the rows left running (wait_cancel jobs hold worker slots)."""
        for job in self.running:
            with contextlib.suppress(grpc.RpcError):  # ended or deleted
                self.gateway.CancelJob(g.CancelJobRequest(job_id=job), timeout=30, metadata=self.alice)
        self.running.clear()

    def reader_name(self) -> str:
        return f"walk-{next(self.counter)}"

    def share_of_job(self) -> str:
        request = s.ShareJobRequest(job_id=self.job, grantee=f"z{next(self.counter)}")
        return self.sharing.ShareJob(request, timeout=10, metadata=self.alice).share_id

    def acme_token(self) -> str:
        request = a.CreateTokenRequest(tenant="acme", name=f"walk-{next(self.counter)}", scopes=["jobs:read"])
        return self.tokens.CreateToken(request, timeout=10, metadata=md(TOKENS["admin"])).info.token_id

    def capability(self, op: str, job: str) -> str:
        subject = "alice" if job != self.bob_job else "bob"
        if op == "write":
            return self.caps.issue(job, 1, tenant="acme", subject=subject)
        if op == "delete":
            return self.caps.deleting(job)
        if op == "grant":
            return self.caps.granting(job)
        return self.caps.reading([job])

    def metadata(self, caller: str, row: Row, target: str) -> list[tuple[str, str]]:
        if caller not in CAPS:
            return md(TOKENS[caller])
        # The capability the row's RPC needs, of its target (a job id); or of bob's job.
        job = target if caller == "capability" else self.bob_job
        return [(CAPABILITY_METADATA, self.capability(row.op, job))]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rpc-table")
    with DevMesh(workers=(), results=True, data_dir=tmp, log_dir=tmp, env=ENV) as mesh:
        mesh.add_worker("tests.series.workflows:worker")
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(mesh.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            while not any(
                t.type.name == "series-async" and t.healthy_instances
                for t in stub.ListWorkflowTypes(
                    g.ListWorkflowTypesRequest(), timeout=5, metadata=md(TOKENS["admin"])
                ).types
            ):
                assert time.monotonic() < deadline, "the worker's types were not listed"
                time.sleep(0.1)
        made = Ctx(mesh)
        try:
            yield made
        finally:
            made.close()


def status(ctx: Ctx, row: Row, caller: str, target: str) -> tuple[grpc.StatusCode, str]:
    try:
        row.call(ctx, target, ctx.metadata(caller, row, target))
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


def walk(ctx: Ctx, name: str, row: Row) -> list[str]:
    """Every caller on the row's target; the failures, worded for a person."""
    failures = []
    shared = row.target(ctx)
    for caller in CALLERS:
        expected = row.expect[caller]
        target = row.fresh(ctx) if expected == OK and row.fresh is not None else shared
        code, details = status(ctx, row, caller, target)
        if code != expected:
            failures.append(f"{name} by {caller}: {code.name} ({details}), expected {expected.name}")
            continue
        token = TOKENS.get(caller)
        if token and token in details:
            failures.append(f"{name} by {caller}: the token is in the message")
        if code == grpc.StatusCode.PERMISSION_DENIED:
            needed = row.scope if caller in SCOPELESS else ("capability" if caller in CAPS else row.rule)
            if needed not in details:
                failures.append(f"{name} by {caller}: {details!r} does not name {needed}")
        if row.job and (caller in SCOPELESS or code == MISSING):
            # The answer does not depend on the job: the same for one that does not exist.
            unknown, words = status(ctx, row, caller, "no-such-job")
            if unknown != code:
                failures.append(f"{name} by {caller}: {unknown.name} for an unknown job, {code.name} for a real one")
            elif code == MISSING and words.replace("no-such-job", target) != details:
                failures.append(f"{name} by {caller}: {details!r} is not worded as {words!r}")
    ctx.tidy()
    return failures


@pytest.mark.parametrize("service", sorted({name.split("/")[1] for name in ROWS}))
def test_every_rpc_with_every_kind_of_caller(ctx, service):
    failures = []
    for name, row in ROWS.items():
        if name.split("/")[1] == service:
            failures += walk(ctx, name, row)
    assert not failures, "\n".join(failures)
