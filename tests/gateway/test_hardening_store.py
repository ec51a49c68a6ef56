"""Regression test of issue 9, defect 8, on a durable job store: a real SQLite file on a real
tmpfs of a few MiB that fills up while jobs run."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from pathlib import Path

import grpc
import pytest

from tests.gateway import hardening_flows as flows
from tests.gateway.mesh import Mesh
from tests.support import eventually_async, run
from workmesh.services.gateway.store.sql._store import SqlJobStore
from workmesh.v1 import admin_pb2, admin_pb2_grpc
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

Code = grpc.StatusCode
TERMINAL = {c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED, c.JOB_STATUS_CANCELLED, c.JOB_STATUS_TIMED_OUT}


async def invariants(mesh: Mesh) -> admin_pb2.CheckInvariantsResponse:
    stub = admin_pb2_grpc.GatewayAdminStub(mesh.channel)
    return await stub.CheckInvariants(admin_pb2.CheckInvariantsRequest())


# -- defect 8: the job store's disk fills up while jobs run ---------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str = "6m"):
    """A real tmpfs of `size` mounted at `path` (root only), unmounted at the end."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write zeros into `path`/filler until the file system is full."""
    filler = path / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), open(filler, "ab", buffering=0) as out:  # the last few bytes
        while True:
            out.write(b"\0")
    return filler


def test_disk_full_strands_no_job_and_holds_no_lease_it_does_not_drive(tmp_path):
    async def main():
        with small_disk(tmp_path / "disk") as disk:
            store = SqlJobStore(f"sqlite:///{disk}/jobs.db", retry_for=1.0, exclusive=True)
            async with Mesh(store=store, lease_seconds=2.0, lease_renew=0.5, reattach_wait=3.0) as mesh:
                await mesh.add_worker([flows.nap], capacity=3)
                await mesh.wait_instances("nap", 1)
                jobs = [(await mesh.submit("nap", seconds=3.0, steps=60)).job_id for _ in range(6)]

                async def three_running():
                    listed = (await mesh.stub.ListJobs(g.ListJobsRequest())).jobs
                    return sum(j.status == c.JOB_STATUS_RUNNING for j in listed) == 3

                await eventually_async(three_running, timeout=20)

                filler = fill(disk)
                # While the disk is full: clients get a retryable status, never UNKNOWN/INTERNAL.
                codes = set()
                for _ in range(3):
                    try:
                        await mesh.submit("nap", seconds=0.1)
                        codes.add(Code.OK)
                    except grpc.aio.AioRpcError as exc:
                        codes.add(exc.code())
                        if exc.code() != Code.OK:
                            assert "full" in exc.details(), exc.details()
                assert codes <= {Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED}, codes
                # The full disk lasts a few lease lifetimes; meanwhile no lease is kept on a job
                # the gateway stopped driving.
                for _ in range(6):
                    report = await invariants(mesh)
                    assert list(report.violations) == [], report
                    await asyncio.sleep(0.5)
                os.unlink(filler)

                async def all_ended():
                    records = [await mesh.job(j) for j in jobs]
                    return all(r.status in TERMINAL for r in records)

                await eventually_async(all_ended, timeout=90)
                for job_id in jobs:  # nothing was lost: they ran to the end (re-attached)
                    assert (await mesh.job(job_id)).status == c.JOB_STATUS_SUCCEEDED

                async def settled():
                    report = await invariants(mesh)
                    info = (await mesh.types())["nap"]
                    return (
                        not report.violations
                        and report.driven_jobs == 0
                        and report.leases_held == 0
                        and info.free_capacity == 3
                    )

                await eventually_async(settled, timeout=20)
            await store.close()

    run(main(), timeout=180.0)
