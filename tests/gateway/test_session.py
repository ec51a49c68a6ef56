"""Jobs over worker Session streams behave exactly as over one Execute call per job.

Every scenario runs through a real gateway and real workers twice — ``sessions=True`` (the
default: one Session stream per worker) and ``sessions=False`` (Execute per job) — and checks
which path carried the jobs. The multiplexer itself (``_session.WorkerSession``) is checked
against a real worker for broken streams and re-attaching.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest

from tests.gateway.mesh import Mesh, statuses, terminal
from tests.gateway.test_failures import start_worker
from tests.support import eventually_async, free_port, run, wait_for_port
from workmesh.services.gateway.discovery._session import WorkerSession
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.v1 import worker_pb2, worker_pb2_grpc
from workmesh.workers import Worker, WorkerConfig
from workmesh.workers.examples.basic import echo, fail, sleep

PATHS = pytest.mark.parametrize("sessions", [True, False], ids=["session", "execute"])


def carried_by(mesh: Mesh, sessions: bool) -> None:
    """Assert that the jobs went over the path under test."""
    instances = mesh.gateway.catalog.instances()
    assert instances
    for inst in instances:
        assert (inst.session is not None) == sessions


def shape(events) -> list[tuple]:
    """Event kinds and statuses in order (times and instance names differ between runs)."""
    out = []
    for e in events:
        kind = e.WhichOneof("payload")
        if kind == "status":
            out.append((e.seq, kind, e.status.status, e.status.attempt))
        elif kind == "error":
            out.append((e.seq, kind, e.error.code, e.error.message))
        elif kind == "result":
            out.append((e.seq, kind, dict(e.result.outputs)))
        else:
            out.append((e.seq, kind))
    return out


@PATHS
def test_result_and_handler_error_have_the_same_events_both_ways(sessions):
    async def main():
        async with Mesh(sessions=sessions) as mesh:
            await mesh.add_worker([echo, fail])
            await mesh.wait_instances("echo", 1)
            await mesh.wait_instances("fail", 1)  # each type registers on its own
            ok = await mesh.submit("echo", message="same")
            bad = await mesh.submit("fail", message="boom")
            ok_events, bad_events = await mesh.follow(ok.job_id), await mesh.follow(bad.job_id)
            carried_by(mesh, sessions)
        assert shape(ok_events) == [
            (1, "status", c.JOB_STATUS_QUEUED, 0),
            (2, "status", c.JOB_STATUS_DISPATCHED, 1),
            (3, "status", c.JOB_STATUS_RUNNING, 1),
            (4, "result", {"message": "same"}),
            (5, "status", c.JOB_STATUS_SUCCEEDED, 1),
        ]
        assert shape(bad_events) == [
            (1, "status", c.JOB_STATUS_QUEUED, 0),
            (2, "status", c.JOB_STATUS_DISPATCHED, 1),
            (3, "status", c.JOB_STATUS_RUNNING, 1),
            (4, "error", "REQUESTED_FAILURE", "boom"),
            (5, "status", c.JOB_STATUS_FAILED, 1),
        ]

    run(main())


@PATHS
def test_many_concurrent_jobs_all_succeed_in_order(sessions):
    async def main():
        async with Mesh(sessions=sessions) as mesh:
            await mesh.add_worker([echo, sleep], capacity=64)
            await mesh.wait_instances("echo", 1)
            await mesh.wait_instances("sleep", 1)  # each type registers on its own
            jobs = [
                await mesh.submit("sleep", seconds=0.05, steps=5)
                if i % 3 == 0
                else await mesh.submit("echo", message=str(i))
                for i in range(60)
            ]
            results = await asyncio.gather(*(mesh.follow(j.job_id) for j in jobs))
            carried_by(mesh, sessions)
        for events in results:
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert terminal(events) == c.JOB_STATUS_SUCCEEDED
            fractions = [e.progress.fraction for e in events if e.HasField("progress")]
            assert fractions == sorted(fractions)

    run(main())


@PATHS
def test_cancel_running_job_both_ways(sessions):
    async def main():
        async with Mesh(sessions=sessions) as mesh:
            await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds=30.0, steps=1)
            await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            carried_by(mesh, sessions)
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id, reason="enough"))
            events = await mesh.follow(job.job_id)
            assert terminal(events) == c.JOB_STATUS_CANCELLED
            assert "enough" in events[-1].status.reason
            assert mesh.workers[0].running == 0

    run(main())


@PATHS
def test_worker_killed_mid_job_is_lost_and_retried_elsewhere(procs, sessions):
    async def main():
        async with Mesh(sessions=sessions) as mesh:
            victim = start_worker(procs, mesh, "workmesh.workers.examples.basic:worker")
            await mesh.wait_instances("sleep", 1)
            # Long enough to outlast starting the survivor and seeing it listed under load: the
            # kill must come while the job still runs on the victim.
            job = await mesh.submit("sleep", seconds=4.0, steps=40)
            running = await mesh.wait_status(job.job_id, c.JOB_STATUS_RUNNING)
            carried_by(mesh, sessions)
            survivor = await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 2)
            procs.stop(victim, signal.SIGKILL)
            events = await mesh.follow(job.job_id)
            assert terminal(events) == c.JOB_STATUS_SUCCEEDED
            lost = [
                e.status
                for e in events
                if e.HasField("status") and e.status.status == c.JOB_STATUS_QUEUED and e.status.reason
            ]
            assert lost and lost[0].reason.startswith("WORKER_LOST")
            assert statuses(events).count(c.JOB_STATUS_DISPATCHED) == 2
            attempts = await mesh.store.attempts(job.job_id)
            assert [(a.attempt, a.instance_id, a.outcome) for a in attempts] == [
                (1, running.instance_id, "LOST"),
                (2, survivor.instance_id, "SUCCEEDED"),
            ]

    run(main())


class _Direct:
    """Runs one job on a real worker through either path, the way the dispatcher does."""

    def __init__(self, stub: worker_pb2_grpc.WorkerStub, sessions: bool) -> None:
        self.stub = stub
        self.session = WorkerSession(stub, "test-worker") if sessions else None

    def execute(self, request):
        return self.session.execute(request) if self.session else self.stub.Execute(request)

    def attach(self, request):
        return self.session.attach(request) if self.session else self.stub.Attach(request)

    async def close(self):
        if self.session is not None:
            await self.session.close()


def _request(job_id: str, seconds: float, steps: int) -> worker_pb2.ExecuteRequest:
    return worker_pb2.ExecuteRequest(
        job_id=job_id,
        workflow_type="sleep",
        attempt=1,
        params={"seconds": c.ParamValue(float_value=seconds), "steps": c.ParamValue(int_value=steps)},
    )


async def _read_all(call) -> list[worker_pb2.WorkerEvent]:
    events = []
    while (event := await call.read()) is not grpc.aio.EOF:
        events.append(event)
    return events


_WORKER_PROCESS = """
import asyncio, sys
from workmesh.workers import WorkerConfig
from workmesh.workers.examples.basic import worker

async def main():
    await worker.start(WorkerConfig(register=False, port=int(sys.argv[1])))
    await asyncio.Event().wait()

asyncio.run(main())
"""


@PATHS
def test_killed_worker_fails_the_call_with_unavailable(procs, sessions):
    async def main():
        port = free_port()
        proc = procs.start("-c", _WORKER_PROCESS, str(port), name="worker")
        wait_for_port(port)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        direct = _Direct(worker_pb2_grpc.WorkerStub(channel), sessions)
        try:
            call = direct.execute(_request("b", 30.0, 1))
            assert (await call.read()).HasField("started")
            procs.stop(proc, signal.SIGKILL)  # the worker dies under the running job
            with pytest.raises(grpc.aio.AioRpcError) as info:
                while await call.read() is not grpc.aio.EOF:
                    pass
            # What the dispatcher maps to "instance lost" (Execute: the transport's own status).
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await direct.close()
            await channel.close()

    run(main())


@PATHS
def test_attach_after_a_broken_stream_replays_and_follows_to_the_end(sessions):
    async def main():
        worker = Worker([sleep], capacity=4)
        port = await worker.start(WorkerConfig(register=False))
        first = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        second = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        before = _Direct(worker_pb2_grpc.WorkerStub(first), sessions)
        after = _Direct(worker_pb2_grpc.WorkerStub(second), sessions)
        try:
            call = before.execute(_request("a", 0.4, 4))
            started = await call.read()
            assert started.HasField("started")
            await before.close()
            await first.close()  # the gateway's connection is gone; the job runs on
            rest = await _read_all(after.attach(worker_pb2.AttachRequest(job_id="a", after_seq=started.seq)))
            assert [e.seq for e in rest] == list(range(2, len(rest) + 2))
            assert rest[-1].HasField("result") and rest[-1].result.outputs["steps"] == 4
            assert [e.WhichOneof("payload") for e in rest].count("progress") >= 1
        finally:
            await after.close()
            await second.close()
            await worker.stop(grace=0)

    run(main())


def test_a_worker_refusal_over_the_session_maps_like_execute():
    async def main():
        worker = Worker([sleep], capacity=1)
        port = await worker.start(WorkerConfig(register=False))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        session = WorkerSession(worker_pb2_grpc.WorkerStub(channel), "w")
        try:
            busy = session.execute(_request("one", 30.0, 1))
            assert (await busy.read()).HasField("started")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await session.execute(_request("two", 0.1, 1)).read()
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await session.attach(worker_pb2.AttachRequest(job_id="ghost")).read()
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            # The session is still up: a cancel over it reaches the running job.
            session.cancel("one", "stop")
            events = await _read_all(busy)
            assert events[-1].error.code == "CANCELLED"
            assert session.broken is None
            await eventually_async(lambda: asyncio.sleep(0, worker.running == 0), timeout=10)
        finally:
            await session.close()
            await channel.close()
            await worker.stop(grace=0)

    run(main())


def test_sessions_can_be_switched_off_from_the_environment():
    from workmesh.services.gateway import GatewayConfig

    assert GatewayConfig.from_env({}).worker_sessions is True
    assert GatewayConfig.from_env({"WORKMESH_WORKER_SESSIONS": "0"}).worker_sessions is False
    assert GatewayConfig.from_env({"WORKMESH_WORKER_SESSIONS": "yes"}).worker_sessions is True
    with pytest.raises(ValueError, match="WORKMESH_WORKER_SESSIONS"):
        GatewayConfig.from_env({"WORKMESH_WORKER_SESSIONS": "maybe"})
