"""Helpers of the fair-share end-to-end tests: submit as an owner, read jobs back, run the CLI."""

from __future__ import annotations

import subprocess
import sys

from workmesh.v1 import common_pb2, gateway_pb2

TERMINAL = {
    common_pb2.JOB_STATUS_SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED,
    common_pb2.JOB_STATUS_CANCELLED,
    common_pb2.JOB_STATUS_TIMED_OUT,
}
BASIC = "workmesh.workers.examples.basic:worker"


def submit(stub, user: str, seconds: float, tenant: str = "t") -> str:
    request = gateway_pb2.SubmitJobRequest(
        workflow_type="sleep",
        tenant=tenant,
        user=user,
        params={"seconds": common_pb2.ParamValue(float_value=seconds), "steps": common_pb2.ParamValue(int_value=1)},
    )
    return stub.SubmitJob(request, timeout=30).job.job_id


def job(stub, job_id: str) -> gateway_pb2.Job:
    return stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), timeout=30)


def all_terminal(stub, ids) -> dict[str, gateway_pb2.Job] | None:
    jobs = {i: job(stub, i) for i in ids}
    return jobs if all(j.status in TERMINAL for j in jobs.values()) else None


def started(j: gateway_pb2.Job) -> int:
    return j.started_at.ToNanoseconds()


def cli(*args: str, gateway: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workmesh.services.cli", *args, "--gateway", gateway],
        capture_output=True,
        text=True,
        timeout=60,
    )
