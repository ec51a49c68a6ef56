"""Version selection and routing (issue 13 point 6), with real worker processes serving
``upgrade`` 1.0.0 and 2.0.0 (2.0.0 adds the ``scale`` parameter) behind the embedded registry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
from packaging.specifiers import SpecifierSet

from tests.gateway.mesh import Mesh, value
from tests.support import eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g

Code = grpc.StatusCode
V1, V2 = "tests.gateway.versioned:worker_v1", "tests.gateway.versioned:worker_v2"


def start(procs, mesh: Mesh, target: str):
    return procs.start("-m", "tests.gateway.worker_main", mesh.registry.address, target, "2", name="worker")


async def submit(mesh: Mesh, version: str = "", timeout: float | None = None, **params) -> g.Job:
    request = g.SubmitJobRequest(
        workflow_type="upgrade", version=version, params={k: value(v) for k, v in params.items()}
    )
    if timeout is not None:
        request.timeout.FromNanoseconds(int(timeout * 1e9))
    return (await mesh.stub.SubmitJob(request)).job


async def refused(mesh: Mesh, version: str, **params) -> grpc.aio.AioRpcError:
    try:
        await submit(mesh, version, **params)
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"version {version!r} with {params} was accepted")


async def versions_live(mesh: Mesh, *versions: str) -> None:
    async def check():
        info = (await mesh.types()).get("upgrade")
        live = sorted(i.version for i in info.instances) if info is not None else []
        return live == sorted(versions)

    await eventually_async(check, timeout=60)  # worker processes start slowly under load


def test_jobs_are_validated_against_and_routed_to_the_version_they_ask_for(procs):
    async def main():
        async with Mesh() as mesh:
            start(procs, mesh, V1)
            start(procs, mesh, V2)
            await versions_live(mesh, "1.0.0", "2.0.0")

            # Validated against the matching version's declaration: 1.x has no "scale".
            exc = await refused(mesh, "^1", scale=2)
            assert exc.code() == Code.INVALID_ARGUMENT and "params.scale" in exc.details()
            for bad in ("^x", ">>1", "1.0 banana", "~", "=" + "9" * 300):
                exc = await refused(mesh, bad)
                assert exc.code() == Code.INVALID_ARGUMENT, (bad, exc.code())
                assert exc.details().startswith("version:"), exc.details()
            exc = await refused(mesh, "^3")
            assert exc.code() == Code.NOT_FOUND and "version" in exc.details() and "1.0.0, 2.0.0" in exc.details()
            assert list((await mesh.stub.ListJobs(g.ListJobsRequest())).jobs) == []  # nothing stored

            pinned = [await submit(mesh, req, seconds=0.05) for req in ("^1", "=1.0.0", ">=1,<2", "1.0.0") * 2]
            newer = [await submit(mesh, "^2", scale=3), await submit(mesh, "=2.0.0")]
            default = await submit(mesh, scale=4)  # the newest live version (2.0.0) or newer
            assert pinned[0].version == str(SpecifierSet(">=1,<2")) and pinned[1].version == "==1.0.0"
            assert default.version == ">=2.0.0"
            for job in pinned:
                done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
                assert done.result.outputs["version"] == "1.0.0", job.version
            for job, scale in zip([*newer, default], [3, 1, 4], strict=True):
                done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
                assert done.result.outputs["version"] == "2.0.0" and done.result.outputs["scale"] == scale

            # The same from the CLI: workmesh submit --version, and workmesh job shows it.
            bad = await asyncio.to_thread(cli, mesh, "submit", "upgrade", "--version", "^1", "-p", "scale=2")
            assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "params.scale" in bad.stderr, bad
            ok = await asyncio.to_thread(cli, mesh, "submit", "upgrade", "--version", "~1.0", "-p", "seconds=0")
            assert ok.returncode == 0, ok.stderr
            done = await mesh.wait_status(ok.stdout.strip(), c.JOB_STATUS_SUCCEEDED)
            assert done.version == "<1.1,>=1.0" and done.result.outputs["version"] == "1.0.0"
            shown = await asyncio.to_thread(cli, mesh, "job", done.job_id)
            assert shown.returncode == 0 and "<1.1,>=1.0" in shown.stdout, shown

    run(main())


def test_a_pinned_job_waits_with_its_reason_then_runs_or_times_out(procs):
    async def main():
        async with Mesh() as mesh:
            v1 = start(procs, mesh, V1)
            start(procs, mesh, V2)
            await versions_live(mesh, "1.0.0", "2.0.0")
            procs.stop(v1, signal.SIGTERM)  # drains and deregisters
            await versions_live(mesh, "2.0.0")

            # Still known (seen before): accepted, validated against 1.0.0, and it waits.
            late = await submit(mesh, "^1", timeout=1.5)
            waiting = await submit(mesh, "^1")
            unpinned = await submit(mesh)
            ran = await mesh.wait_status(unpinned.job_id, c.JOB_STATUS_SUCCEEDED)
            assert ran.result.outputs["version"] == "2.0.0"

            events = await mesh.follow(late.job_id, timeout=20)
            reasons = [e.log.message for e in events if e.WhichOneof("payload") == "log"]
            assert any("no live instance of 'upgrade' serves a version matching" in r and "2.0.0" in r for r in reasons)
            ended = await mesh.job(late.job_id)
            assert ended.status == c.JOB_STATUS_TIMED_OUT and ended.attempts == 0
            assert "in the queue" in ended.error.message and "<2,>=1" in ended.error.message

            async def told():
                events = await mesh.store.events(waiting.job_id)
                return any(e.WhichOneof("payload") == "log" and "waiting:" in e.log.message for e in events)

            await eventually_async(told, timeout=10)
            place = (await mesh.job(waiting.job_id)).queue
            assert place.waiting.startswith("no live instance of 'upgrade' serves a version matching '<2,>=1'"), place
            shown = await asyncio.to_thread(cli, mesh, "job", waiting.job_id)
            assert shown.returncode == 0 and "no live instance of 'upgrade'" in shown.stdout, shown
            start(procs, mesh, V1)  # a 1.x instance comes back: the waiting job runs there
            done = await mesh.wait_status(waiting.job_id, c.JOB_STATUS_SUCCEEDED)
            assert done.result.outputs["version"] == "1.0.0"

    run(main())


def cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "workmesh.services.cli", *args, "--gateway", f"127.0.0.1:{mesh.port}"]
    env = {**os.environ, "COLUMNS": "300"}  # one table row per line
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def test_types_lists_each_live_version_with_its_instances_and_capacity(procs):
    async def main():
        async with Mesh() as mesh:
            start(procs, mesh, V1)
            start(procs, mesh, V2)
            start(procs, mesh, V2)
            await versions_live(mesh, "1.0.0", "2.0.0", "2.0.0")

            info = (await mesh.types())["upgrade"]
            assert [v.version for v in info.versions] == ["2.0.0", "1.0.0"]  # newest first
            v2, v1 = info.versions
            assert (v2.healthy_instances, v2.capacity, len(v2.addresses)) == (2, 4, 2)
            assert (v1.healthy_instances, v1.capacity, len(v1.addresses)) == (1, 2, 1)
            assert sorted([*v1.addresses, *v2.addresses]) == sorted(i.address for i in info.instances)
            assert {p.name for p in v2.type.params} == {"seconds", "scale"}
            assert {p.name for p in v1.type.params} == {"seconds"}  # each version's own declaration
            # A job in flight on the one 1.x instance takes a slot of 1.0.0 only.
            busy = await submit(mesh, "^1", seconds=60)  # outlasts the CLI's start-up under load
            await mesh.wait_status(busy.job_id, c.JOB_STATUS_RUNNING)
            info = (await mesh.types())["upgrade"]
            assert [(v.version, v.free_capacity) for v in info.versions] == [("2.0.0", 4), ("1.0.0", 1)]

            listed = await asyncio.to_thread(cli, mesh, "types", "--json")
            assert listed.returncode == 0, listed.stderr
            (shown,) = [t for t in json.loads(listed.stdout) if t["type"]["name"] == "upgrade"]
            assert [(v["version"], v["capacity"], len(v["addresses"])) for v in shown["versions"]] == [
                ("2.0.0", 4, 2),
                ("1.0.0", 2, 1),
            ]
            table = await asyncio.to_thread(cli, mesh, "types")
            assert table.returncode == 0, table.stderr
            lines = table.stdout.splitlines()
            at = [i for i, line in enumerate(lines) if "2.0.0" in line or "1.0.0" in line]
            assert len(at) == 2 and "upgrade" in lines[at[0]] and "2.0.0" in lines[at[0]], table.stdout
            newer, older = "\n".join(lines[at[0] : at[1]]), "\n".join(lines[at[1] :])  # a row each, newest first
            assert "1.0.0" in older and "4/4" in newer and "1/2" in older, table.stdout  # free/capacity per version
            assert "scale" in newer and "scale" not in older, table.stdout  # each version's parameters
            assert all(a in newer for a in v2.addresses) and all(a in older for a in v1.addresses), table.stdout
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=busy.job_id))
            await mesh.wait_status(busy.job_id, c.JOB_STATUS_CANCELLED)

    run(main())


def test_a_pinned_job_times_out_when_no_instance_of_its_type_is_left(procs):
    """No pass of the dispatcher reaches a job whose type has no instance at all (or only busy
    ones of other versions): its queue timeout is armed when it is queued or the versions change."""

    async def main():
        async with Mesh() as mesh:
            v1 = start(procs, mesh, V1)
            await versions_live(mesh, "1.0.0")
            busy = [await submit(mesh, "^1", seconds=3) for _ in range(2)]  # both slots of the one instance
            for job in busy:
                await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            queued = await submit(mesh, "^1", timeout=2.0)  # a matching instance is live, only busy
            place = (await mesh.job(queued.job_id)).queue
            assert place.queued >= 1 and place.waiting == "", place  # it waits for a slot only
            os.kill(v1.pid, signal.SIGTERM)  # drains its two jobs, deregisters at once (stopped by pid at the end)
            await versions_live(mesh)
            late = await submit(mesh, "=1.0.0", timeout=1.0)  # no instance of the type at all

            for job in (queued, late):
                ended = await mesh.wait_status(job.job_id, c.JOB_STATUS_TIMED_OUT)
                assert ended.attempts == 0 and "in the queue" in ended.error.message, ended.error.message
                assert "live versions: none" in ended.error.message, ended.error.message
                events = await mesh.store.events(job.job_id)
                reasons = [e.log.message for e in events if e.WhichOneof("payload") == "log"]
                assert any(r.startswith("waiting: no live instance of 'upgrade'") for r in reasons), reasons
            for job in busy:  # the drained instance finished what it had
                await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)

    run(main())


def test_a_range_over_versions_with_other_params_runs_each_job_where_they_are_declared(procs):
    """``>=1`` spans 1.0.0 and 2.0.0, validated against 2.0.0 (its ``scale`` default is stored):
    such a job never goes to 1.0.0, which does not declare ``scale``; with only 1.0.0 left it waits."""

    async def main():
        async with Mesh() as mesh:
            start(procs, mesh, V1)
            v2 = start(procs, mesh, V2)
            await versions_live(mesh, "1.0.0", "2.0.0")
            spread = [await submit(mesh, ">=1", seconds=0.05) for _ in range(6)]
            older = [await submit(mesh, ">=1,<2", seconds=0.05) for _ in range(2)]
            for job in spread:
                done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED, c.JOB_STATUS_FAILED)
                assert done.result.outputs["version"] == "2.0.0", done.error.message
            for job in older:
                done = await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)
                assert done.result.outputs["version"] == "1.0.0"

            busy = [await submit(mesh, ">=1", seconds=3) for _ in range(2)]  # both slots of 2.0.0
            for job in busy:
                await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            queued = await submit(mesh, ">=1", timeout=2.0, scale=2)  # 1.0.0 is free but has no scale
            os.kill(v2.pid, signal.SIGTERM)  # drains its two jobs (stopped by pid at the end)
            await versions_live(mesh, "1.0.0")
            ended = await mesh.wait_status(queued.job_id, c.JOB_STATUS_TIMED_OUT)
            assert ended.attempts == 0, ended
            assert "that declares its params (live versions: 1.0.0)" in ended.error.message, ended.error.message
            events = await mesh.store.events(queued.job_id)
            reasons = [e.log.message for e in events if e.WhichOneof("payload") == "log"]
            assert any("matching '>=1' that declares its params (live versions: 1.0.0)" in r for r in reasons), reasons
            for job in busy:
                assert (await mesh.wait_status(job.job_id, c.JOB_STATUS_SUCCEEDED)).result.outputs["version"] == "2.0.0"

    run(main())


@pytest.mark.parametrize(
    ("written", "inside", "outside"),
    [
        ("^1.2", ["1.2.0", "1.9.3"], ["1.1.9", "2.0.0"]),
        ("^0.3", ["0.3.0", "0.3.7"], ["0.4.0", "1.0.0"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("=1.2.0", ["1.2.0"], ["1.2.1"]),
        ("1.2.0", ["1.2.0"], ["1.2.1"]),
        (">=1.2,<2", ["1.2", "1.10.0"], ["1.1", "2.0"]),
        ("^1.2, !=1.5.0", ["1.4.0"], ["1.5.0", "2.0.0"]),
    ],
)
def test_requirement_forms(written, inside, outside):
    from workmesh.services.gateway.discovery._versions import parse_requirement

    requirement = parse_requirement(written)
    assert all(requirement.matches(v) for v in inside)
    assert not any(requirement.matches(v) for v in outside)
    assert not requirement.matches("not-a-version")
