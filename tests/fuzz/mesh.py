"""A mesh of real processes for the gateway and worker fuzz tests, and what they assert.

Registry, gateway (SQLite job store in a temp dir) and one worker serving
``tests.gateway.hardening_flows`` run as ``workmesh`` processes, stopped by pid at the end. The
fuzz talks to them with plain gRPC clients and checks, after every request, that the answer is
an allowed status (never UNKNOWN or INTERNAL), and once the fuzz stops, that no process exited,
no job is left non-terminal and no capacity is missing compared with the start.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc

from tests.support import Processes, eventually, free_port, processes, wait_for_port
from workmesh.services.core.limits import message_options
from workmesh.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2_grpc, worker_pb2, worker_pb2_grpc
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

FLOWS = "tests.gateway.hardening_flows:worker"
TYPES = ("typed", "nap")
CAPACITY = 3
TERMINAL = {c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED, c.JOB_STATUS_CANCELLED, c.JOB_STATUS_TIMED_OUT}
Code = grpc.StatusCode
# Never acceptable, whatever a client sends: they mean the server did not understand its own failure.
FORBIDDEN = {Code.UNKNOWN, Code.INTERNAL}


@dataclass
class FuzzMesh:
    """The processes, their clients, and the job ids the fuzz created (to aim requests at)."""

    procs: Processes
    registry: object
    gateway: object
    worker: object
    gateway_address: str
    worker_address: str
    channel: grpc.Channel
    worker_channel: grpc.Channel
    job_ids: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def stub(self) -> gateway_pb2_grpc.GatewayStub:
        return gateway_pb2_grpc.GatewayStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.GatewayAdminStub:
        return admin_pb2_grpc.GatewayAdminStub(self.channel)

    @property
    def worker_stub(self) -> worker_pb2_grpc.WorkerStub:
        return worker_pb2_grpc.WorkerStub(self.worker_channel)

    def alive(self) -> None:
        for name, proc in (("registry", self.registry), ("gateway", self.gateway), ("worker", self.worker)):
            assert proc.poll() is None, f"the {name} exited ({proc.returncode}):\n{self.procs.log_of(proc)[-3000:]}"

    def free_capacity(self) -> dict[str, int]:
        types = self.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=10).types
        return {t.type.name: t.free_capacity for t in types}


def start_mesh(procs: Processes, data_dir) -> FuzzMesh:
    """Start registry, gateway and worker; return once the gateway routes to the worker."""
    registry_port, gateway_port = free_port(), free_port()
    registry = procs.workmesh("registry", "--host", "127.0.0.1", "--port", str(registry_port), name="registry")
    wait_for_port(registry_port, timeout=30)
    consul = f"127.0.0.1:{registry_port}"
    gateway = procs.workmesh(
        "gateway",
        "--listen",
        f"127.0.0.1:{gateway_port}",
        name="gateway",
        env={
            "CONSUL_HTTP_ADDR": consul,
            "WORKMESH_DATA_DIR": str(data_dir),
            "WORKMESH_CANCEL_GRACE": "1",
            "WORKMESH_LOG_LEVEL": "WARNING",
        },
    )
    worker = procs.workmesh(
        "worker",
        FLOWS,
        "--listen",
        "127.0.0.1:0",
        "--capacity",
        str(CAPACITY),
        name="worker",
        env={
            "CONSUL_HTTP_ADDR": consul,
            "WORKMESH_WORKER_DRAIN_GRACE": "0",
            "WORKMESH_WORKER_CANCEL_GRACE": "1",
            "WORKMESH_LOG_LEVEL": "WARNING",
        },
    )
    wait_for_port(gateway_port, timeout=30)
    options = message_options()
    channel = grpc.insecure_channel(f"127.0.0.1:{gateway_port}", options=options)
    mesh = FuzzMesh(procs, registry, gateway, worker, f"127.0.0.1:{gateway_port}", "", channel, None)

    def routed():
        free = mesh.free_capacity()
        return all(free.get(name) == CAPACITY for name in TYPES)

    eventually(routed, timeout=60, interval=0.1)
    mesh.worker_address = _worker_address(consul)
    mesh.worker_channel = grpc.insecure_channel(mesh.worker_address, options=options)
    return mesh


def _worker_address(consul: str) -> str:
    with urllib.request.urlopen(f"http://{consul}/v1/health/service/workmesh-wf-typed?passing=1", timeout=5) as r:
        entry = json.loads(r.read())[0]["Service"]
    return f"{entry['Address']}:{entry['Port']}"


@contextlib.contextmanager
def running_mesh(tmp_path_factory, name: str) -> Iterator[FuzzMesh]:
    """A started mesh for one test module; every process is stopped by pid at the end."""
    with processes(tmp_path_factory.mktemp(f"{name}-logs")) as procs:
        mesh = start_mesh(procs, tmp_path_factory.mktemp(f"{name}-data"))
        try:
            yield mesh
        finally:
            for channel in (mesh.channel, mesh.worker_channel):
                if channel is not None:
                    channel.close()


def check_code(code: Code, details: str, allowed: dict[Code, str], what: str) -> None:
    """A status the fuzz got: never UNKNOWN/INTERNAL; otherwise one `allowed` names (with why)."""
    assert code not in FORBIDDEN, f"{what}: {code.name}: {details}"
    assert code == Code.OK or code in allowed, f"{what}: unexpected {code.name}: {details}"
    if code == Code.INVALID_ARGUMENT:
        # The message names the field (a parameter's name is whatever the client sent) and the rule.
        named = details.startswith("params.") and ": " in details  # a client's key may hold ": "
        assert named or re.match(r"^[\w.\[\]-]+: .", details or ""), (
            f"{what}: INVALID_ARGUMENT without a field and rule: {details!r}"
        )


def call(mesh: FuzzMesh, fn, request, allowed: dict[Code, str], what: str, timeout: float = 10.0):
    """One unary request; checks the status; returns the reply or None."""
    mesh.requests += 1
    try:
        return fn(request, timeout=timeout)
    except grpc.RpcError as exc:
        check_code(exc.code(), exc.details() or "", allowed, what)
        return None


def drain(mesh: FuzzMesh, stream, allowed: dict[Code, str], what: str, limit: int = 10_000) -> list:
    """Read a server stream to its end (or `limit` items); checks the status."""
    mesh.requests += 1
    items = []
    try:
        for item in stream:
            items.append(item)
            if len(items) >= limit:
                stream.cancel()
                break
    except grpc.RpcError as exc:
        if exc.code() != Code.CANCELLED or len(items) < limit:
            check_code(exc.code(), exc.details() or "", allowed, what)
    return items


def raw_call(
    mesh: FuzzMesh,
    channel: grpc.Channel,
    method: str,
    payload: bytes,
    allowed: dict[Code, str],
    streaming: tuple[bool, bool],
) -> None:
    """Send undecodable bytes as the request message of `method`."""
    mesh.requests += 1
    client_stream, server_stream = streaming
    try:
        if client_stream and server_stream:
            call_ = channel.stream_stream(method)(iter([payload]), timeout=5)
            for _ in call_:
                pass
        elif server_stream:
            for _ in channel.unary_stream(method)(payload, timeout=5):
                pass
        elif client_stream:
            channel.stream_unary(method)(iter([payload]), timeout=5)
        else:
            channel.unary_unary(method)(payload, timeout=5)
    except grpc.RpcError as exc:
        check_code(exc.code(), exc.details() or "", allowed, f"{method} with garbage bytes")


def invariants(mesh: FuzzMesh) -> admin_pb2.CheckInvariantsResponse:
    return mesh.admin.CheckInvariants(admin_pb2.CheckInvariantsRequest(), timeout=30)


def settle(mesh: FuzzMesh, baseline: dict[str, int], timeout: float = 90.0) -> None:
    """Once the fuzz stops: no process exited, every job ends (the ones still running are
    cancelled, as a client would), free capacity is back to `baseline`, the gateway's
    self-check finds nothing wrong and the worker runs nothing."""
    mesh.alive()
    live: list[str] = []
    token = ""
    while True:
        reply = mesh.stub.ListJobs(g.ListJobsRequest(page_size=1000, page_token=token), timeout=30)
        live.extend(j.job_id for j in reply.jobs if j.status not in TERMINAL)
        token = reply.next_page_token
        if not token:
            break
    for job_id in live:
        with contextlib.suppress(grpc.RpcError):  # it may end (or be deleted) meanwhile
            mesh.stub.CancelJob(g.CancelJobRequest(job_id=job_id, reason="fuzz over"), timeout=30)

    def ended():
        for job_id in live:
            try:
                job = mesh.stub.GetJob(g.GetJobRequest(job_id=job_id), timeout=10)
            except grpc.RpcError as exc:
                if exc.code() == Code.NOT_FOUND:
                    continue
                raise
            assert job.status in TERMINAL, f"job {job_id} still {c.JobStatus.Name(job.status)}"
        return True

    eventually(ended, timeout=timeout, interval=0.2)

    def restored():
        report = invariants(mesh)
        assert list(report.violations) == [], report
        assert report.driven_jobs == 0 and report.leases_held == 0, report
        free = mesh.free_capacity()
        assert {k: free.get(k) for k in baseline} == baseline, free
        running = mesh.worker_stub.Describe(worker_pb2.DescribeRequest(), timeout=10).running
        assert running == 0, f"the worker still runs {running} job(s)"
        return True

    eventually(restored, timeout=30, interval=0.2)
    mesh.alive()


def timed(fn):
    """Run `fn()`; return (its result, seconds taken)."""
    start = time.monotonic()
    out = fn()
    return out, time.monotonic() - start
