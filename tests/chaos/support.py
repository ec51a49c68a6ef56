"""A mesh of real processes for the chaos tests: registry, gateway(s), workers — all started
through the ``procs`` fixture, so every one is stopped by pid when the test ends, even on failure."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import grpc

from tests.support import Processes, eventually, free_port, wait_for_port
from workmesh.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2_grpc
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

FLOWS = "tests.chaos.flows:worker"
CRASH = "tests.chaos.flows:crash_worker"
TERMINAL = {c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED, c.JOB_STATUS_CANCELLED, c.JOB_STATUS_TIMED_OUT}

# Short leases and waits so that take-overs happen within a test's time; no other change.
GATEWAY_ENV = {
    "WORKMESH_LEASE_SECONDS": "2",
    "WORKMESH_LEASE_RENEW": "0.5",
    "WORKMESH_REATTACH_WAIT": "8",
    "WORKMESH_CANCEL_GRACE": "2",
    "WORKMESH_SHUTDOWN_GRACE": "1",
    "WORKMESH_LOG_LEVEL": "INFO",
}
WORKER_ENV = {"WORKMESH_WORKER_DRAIN_GRACE": "0", "WORKMESH_WORKER_CANCEL_GRACE": "1"}


class Gateway:
    """One gateway process and a client stub for it."""

    def __init__(self, cluster: object, proc: subprocess.Popen, port: int, host: str = "127.0.0.1") -> None:
        self.cluster = cluster
        self.proc = proc
        self.port = port
        self.host = host
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)
        self.admin = admin_pb2_grpc.GatewayAdminStub(self.channel)

    def submit(self, workflow_type: str = "chaos-record", timeout: float | None = None, **params) -> g.Job:
        values = {k: c.ParamValue(string_value=str(v)) for k, v in params.items()}
        request = g.SubmitJobRequest(workflow_type=workflow_type, params=values)
        if timeout is not None:
            request.timeout.FromNanoseconds(int(timeout * 1e9))
        return self.stub.SubmitJob(request, timeout=30).job

    def job(self, job_id: str) -> g.Job:
        return self.stub.GetJob(g.GetJobRequest(job_id=job_id), timeout=30)

    def events(self, job_id: str, after_seq: int = 0, timeout: float = 60) -> list[c.JobEvent]:
        """Every event of a job from `after_seq` until its terminal status."""
        return list(self.stub.WatchJob(g.WatchJobRequest(job_id=job_id, after_seq=after_seq), timeout=timeout))

    def wait_types(self, name: str, instances: int, timeout: float = 30) -> None:
        def listed():
            try:
                types = self.stub.ListWorkflowTypes(g.ListWorkflowTypesRequest(), timeout=5).types
            except grpc.RpcError as exc:
                # The port is bound before the gateway serves (its store starts first): under
                # load the first calls wait in the backlog. Not serving yet is "not yet".
                if exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                    return False
                raise
            return any(t.type.name == name and t.healthy_instances >= instances for t in types)

        eventually(listed, timeout=timeout, interval=0.05)

    def wait_status(self, job_id: str, *statuses: int, timeout: float = 30) -> g.Job:
        def reached():
            job = self.job(job_id)
            return job if job.status in statuses else None

        return eventually(reached, timeout=timeout, interval=0.05)

    def wait_terminal(self, job_ids: Iterable[str], timeout: float = 90) -> dict[str, g.Job]:
        done: dict[str, g.Job] = {}

        def all_done():
            for job_id in job_ids:
                if job_id not in done:
                    job = self.job(job_id)
                    if job.status in TERMINAL:
                        done[job_id] = job
            return len(done) == len(list(job_ids))

        eventually(all_done, timeout=timeout, interval=0.2)
        return done

    def invariants(self) -> admin_pb2.CheckInvariantsResponse:
        """The gateway's self-check (leases only on driven jobs, slots only for live attempts)."""
        return self.admin.CheckInvariants(admin_pb2.CheckInvariantsRequest(), timeout=30)

    def close(self) -> None:
        self.channel.close()


class Cluster:
    """Registry + gateways + workers as real ``workmesh`` processes on loopback ports."""

    def __init__(self, procs: Processes, tmp: Path) -> None:
        self.procs = procs
        self.tmp = tmp
        self.registry_port = free_port()
        self.gateways: list[Gateway] = []
        self.workers: dict[str, subprocess.Popen] = {}  # instance id -> process
        self._ids = Counter()
        proc = procs.workmesh("registry", "--host", "127.0.0.1", "--port", str(self.registry_port), name="registry")
        wait_for_port(self.registry_port, timeout=30)
        self.registry_proc = proc

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def gateway(
        self, *, port: int = 0, database_url: str = "", data_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> Gateway:
        port = port or free_port()
        full = {
            **GATEWAY_ENV,
            "CONSUL_HTTP_ADDR": self.registry,
            "WORKMESH_DATA_DIR": str(data_dir or self.tmp),
            **(env or {}),
        }
        if database_url:
            full["DATABASE_URL"] = database_url
        proc = self.procs.workmesh("gateway", "--listen", f"127.0.0.1:{port}", env=full, name="gateway")
        wait_for_port(port, timeout=30)
        gw = Gateway(self, proc, port)
        self.gateways.append(gw)
        return gw

    def worker(self, target: str = FLOWS, capacity: int = 4, prefix: str = "w") -> str:
        """Start a worker process; returns its instance id."""
        self._ids[prefix] += 1
        instance = f"{prefix}{self._ids[prefix]}"
        env = {**WORKER_ENV, "CONSUL_HTTP_ADDR": self.registry, "WORKMESH_WORKER_INSTANCE_ID": instance}
        self.workers[instance] = self.procs.workmesh(
            "worker", target, "--listen", "127.0.0.1:0", "--capacity", str(capacity), env=env, name=instance
        )
        return instance

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL a process of this cluster (by pid) and reap it."""
        self.procs.stop(proc, signal.SIGKILL)

    def wait_passing(self, workflow_type: str, instance: str, timeout: float = 30) -> None:
        """Until the registry lists `instance` as a passing instance of the type."""
        url = f"http://{self.registry}/v1/health/service/workmesh-wf-{workflow_type}?passing=1"

        def passing():
            with urllib.request.urlopen(url, timeout=5) as reply:
                return any(e["Service"]["ID"].endswith(f"-{instance}") for e in json.loads(reply.read()))

        eventually(passing, timeout=timeout, interval=0.05)

    def close(self) -> None:
        for gw in self.gateways:
            gw.close()


def idle(gateway: Gateway) -> bool:
    """The gateway drives no job and holds no lease, and its self-check finds nothing wrong."""
    report = gateway.invariants()
    assert list(report.violations) == [], report
    return report.driven_jobs == 0 and report.leases_held == 0


def statuses(events: list[c.JobEvent]) -> list[int]:
    return [e.status.status for e in events if e.WhichOneof("payload") == "status"]


def check_once(events: list[c.JobEvent], status: int = c.JOB_STATUS_SUCCEEDED) -> None:
    """The client's view of one job: numbered 1..n without gaps, one terminal status (the
    expected one, last), and — when it succeeded — exactly one result."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), [e.seq for e in events]
    terminal = [s for s in statuses(events) if s in TERMINAL]
    assert terminal == [status], terminal
    assert statuses(events)[-1] == status
    results = [e for e in events if e.WhichOneof("payload") == "result"]
    assert len(results) == (1 if status == c.JOB_STATUS_SUCCEEDED else 0)


def runs(log: Path) -> Counter:
    """How many times each job's handler started, from a chaos-record log file."""
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())
