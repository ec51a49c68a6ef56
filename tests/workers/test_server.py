"""The Worker gRPC service against a real in-process grpc.aio server on a free port."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support import eventually_async, run
from tests.workers.helpers import collect, execute_request, kinds, serving
from workmesh.v1 import common_pb2, worker_pb2
from workmesh.workers import ApplicationError, Context, Param, RetryableError, Worker, workflow
from workmesh.workers.examples import basic

GATES: dict[str, asyncio.Event] = {}
RUNS: dict[str, int] = {}


@workflow(name="gated", params=[Param.string("gate", required=True)])
async def gated(ctx: Context, gate: str) -> dict:
    """Reports progress, then waits for the test to open its gate (or for cancellation)."""
    RUNS[gate] = RUNS.get(gate, 0) + 1
    ctx.progress(0.25, "waiting at the gate")
    ctx.log("info", "at gate", gate=gate)
    waiter = asyncio.ensure_future(GATES[gate].wait())
    cancelled = asyncio.ensure_future(ctx.wait_cancelled())
    await asyncio.wait([waiter, cancelled], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    cancelled.cancel()
    ctx.check_cancelled()
    ctx.progress(1.0, "through")
    return {"gate": gate}


@workflow(name="stubborn")
async def stubborn(ctx: Context) -> dict:
    ctx.progress(0.1, "ignoring cancellation")
    await asyncio.sleep(3600)
    return {}


RELEASE = threading.Event()


@workflow(name="stubborn-thread")
def stubborn_thread(ctx: Context) -> dict:
    ctx.progress(0.1, "a thread that never checks")
    RELEASE.wait(60)
    return {}


@workflow(name="broken", params=[Param.string("kind", default="plain")])
async def broken(ctx: Context, kind: str) -> dict:
    if kind == "retryable":
        raise RetryableError("database briefly away")
    if kind == "app":
        raise ApplicationError("bad input data", code="BAD_DATA")
    raise ZeroDivisionError("division by zero")


def new_gate(name: str) -> asyncio.Event:
    GATES[name] = asyncio.Event()
    return GATES[name]


async def first_events(call, n: int) -> list[worker_pb2.WorkerEvent]:
    events = []
    async for event in call:
        events.append(event)
        if len(events) == n:
            return events
    return events


def test_describe_lists_full_schemas():
    async def body():
        worker = Worker([basic.echo, basic.sleep, basic.fail], capacity=3)
        async with serving(worker, instance_id="test-instance") as stub:
            info = await stub.Describe(worker_pb2.DescribeRequest())
        assert info.instance_id == "test-instance" and info.capacity == 3 and info.running == 0
        assert info.sdk_version
        types = {t.name: t for t in info.types}
        assert sorted(types) == ["echo", "fail", "sleep"]
        seconds = {p.name: p for p in types["sleep"].params}["seconds"]
        assert seconds.type == common_pb2.PARAM_TYPE_FLOAT and seconds.max == 86400 and seconds.unit == "s"
        assert seconds.default.float_value == 1.0

    run(body())


def test_execute_streams_ordered_events_ending_in_a_result():
    async def body():
        async with serving(Worker([basic.sleep])) as stub:
            events = await collect(stub.Execute(execute_request("job-1", "sleep", seconds=0.05, steps=3)))
        assert kinds(events)[0] == "started" and kinds(events)[-1] == "result"
        assert set(kinds(events)[1:-1]) == {"progress"}
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        fractions = [e.progress.fraction for e in events[1:-1]]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert events[-1].result.outputs["steps"] == 3
        assert all(e.time.seconds > 0 for e in events)

    run(body())


@pytest.mark.parametrize(
    "kind, code, retryable, message",
    [
        ("plain", "HANDLER_ERROR", False, "ZeroDivisionError: division by zero"),
        ("app", "BAD_DATA", False, "bad input data"),
        ("retryable", "RETRYABLE_ERROR", True, "database briefly away"),
    ],
)
def test_handler_errors_end_the_stream(kind, code, retryable, message):
    async def body():
        async with serving(Worker([broken])) as stub:
            events = await collect(stub.Execute(execute_request(f"err-{kind}", "broken", kind=kind)))
        assert kinds(events) == ["started", "error"]
        assert (events[-1].error.code, events[-1].error.retryable, events[-1].error.message) == (
            code,
            retryable,
            message,
        )

    run(body())


def test_bad_requests_get_clear_statuses():
    async def body():
        async with serving(Worker([basic.echo, basic.sleep])) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Execute(execute_request("x1", "nope")))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert "'nope'" in info.value.details() and "echo, sleep" in info.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Execute(execute_request("x2", "sleep", steps="many")))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == "params.steps: expected an int, got 'many'"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Execute(execute_request("", "echo")))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "job_id" in info.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Attach(worker_pb2.AttachRequest(job_id="ghost")))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND and "ghost" in info.value.details()
            assert not (await stub.Cancel(worker_pb2.CancelRequest(job_id="ghost"))).found

    run(body())


def test_capacity_exhausted():
    async def body():
        gate = new_gate("cap")
        async with serving(Worker([gated], capacity=1)) as stub:
            first = stub.Execute(execute_request("cap-1", "gated", gate="cap"))
            await first_events(first, 2)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Execute(execute_request("cap-2", "gated", gate="cap")))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "capacity (1 jobs running)" in info.value.details()
            assert (await stub.Describe(worker_pb2.DescribeRequest())).running == 1
            gate.set()
            assert kinds(await collect(first))[-1] == "result"

    run(body())


def test_cancel_reaches_a_checking_handler():
    async def body():
        new_gate("cancel")
        # A long grace: a CANCELLED result can only come from the handler's own check.
        async with serving(Worker([gated], cancel_grace=60)) as stub:
            call = stub.Execute(execute_request("c-1", "gated", gate="cancel"))
            await first_events(call, 2)
            assert (await stub.Cancel(worker_pb2.CancelRequest(job_id="c-1", reason="user cancelled"))).found
            rest = await collect(call)
        assert rest[-1].error.code == "CANCELLED" and rest[-1].error.message == "user cancelled"

    run(body())


def test_handlers_ignoring_cancel_are_forced_after_the_grace_period():
    async def body():
        RELEASE.clear()
        worker = Worker([stubborn, stubborn_thread], cancel_grace=0.2)
        async with serving(worker) as stub:
            calls = {t: stub.Execute(execute_request(f"f-{t}", t)) for t in ("stubborn", "stubborn-thread")}
            for t, call in calls.items():
                await first_events(call, 2)
                await stub.Cancel(worker_pb2.CancelRequest(job_id=f"f-{t}"))
            for call in calls.values():
                last = (await collect(call))[-1]
                assert last.error.code == "CANCELLED" and "grace period" in last.error.message
            # The thread cannot be killed: it keeps its capacity slot until it returns.
            assert (await stub.Describe(worker_pb2.DescribeRequest())).running == 1
            RELEASE.set()

            async def idle():
                return (await stub.Describe(worker_pb2.DescribeRequest())).running == 0

            await eventually_async(idle)

    run(body())


def test_attach_replays_after_a_seq_and_follows_live():
    async def body():
        gate = new_gate("attach")
        async with serving(Worker([gated])) as stub:
            call = stub.Execute(execute_request("a-1", "gated", gate="attach"))
            seen = await first_events(call, 3)  # started, progress, log
            assert kinds(seen) == ["started", "progress", "log"]
            call.cancel()  # the gateway goes away; the job keeps running
            replay = stub.Attach(worker_pb2.AttachRequest(job_id="a-1", after_seq=1))
            again = await first_events(replay, 2)
            assert [e.seq for e in again] == [2, 3] and again == seen[1:]
            gate.set()
            live = await collect(replay)
            assert kinds(live) == ["progress", "result"] and [e.seq for e in live] == [4, 5]
            # A finished job stays attachable: replay everything after seq 4.
            tail = await collect(stub.Attach(worker_pb2.AttachRequest(job_id="a-1", after_seq=4)))
            assert [e.seq for e in tail] == [5] and tail[0].result.outputs["gate"] == "attach"
        assert RUNS["attach"] == 1

    run(body())


def test_execute_twice_with_the_same_job_id_runs_once():
    async def body():
        gate = new_gate("twice")
        async with serving(Worker([gated])) as stub:
            one = stub.Execute(execute_request("t-1", "gated", gate="twice"))
            await first_events(one, 2)
            two = stub.Execute(execute_request("t-1", "gated", gate="twice"))
            await first_events(two, 2)
            gate.set()
            first, second = await collect(one), await collect(two)
            assert kinds(first)[-1] == kinds(second)[-1] == "result"
            assert first[-1] == second[-1]
            # The same finished attempt again: replayed, not re-run.
            replay = await collect(stub.Execute(execute_request("t-1", "gated", gate="twice")))
            assert replay[-1] == first[-1]
        assert RUNS["twice"] == 1

    run(body())


def test_a_new_attempt_of_a_finished_job_runs_again():
    async def body():
        new_gate("retry").set()
        async with serving(Worker([gated])) as stub:
            await collect(stub.Execute(execute_request("r-1", "gated", attempt=1, gate="retry")))
            events = await collect(stub.Execute(execute_request("r-1", "gated", attempt=2, gate="retry")))
            assert kinds(events)[-1] == "result" and events[0].seq == 1
        assert RUNS["retry"] == 2

    run(body())


def test_orphaned_job_is_cancelled_when_nobody_attaches():
    async def body():
        new_gate("orphan")
        async with serving(Worker([gated], orphan_timeout=0.2)) as stub:
            call = stub.Execute(execute_request("o-1", "gated", gate="orphan"))
            await first_events(call, 2)
            call.cancel()

            async def cancelled():
                events = await collect(stub.Attach(worker_pb2.AttachRequest(job_id="o-1", after_seq=3)))
                return (
                    events and events[-1].error.code == "CANCELLED" and "no client attached" in events[-1].error.message
                )

            # Attaching itself would stop the orphan timer, so attach only once the job is done.
            await eventually_async(lambda: worker_done(stub))
            assert await cancelled()

    run(body())


async def worker_done(stub) -> bool:
    return (await stub.Describe(worker_pb2.DescribeRequest())).running == 0


def test_deadline_times_the_job_out():
    async def body():
        new_gate("deadline")
        async with serving(Worker([gated])) as stub:
            request = execute_request("d-1", "gated", gate="deadline")
            request.deadline.GetCurrentTime()
            request.deadline.nanos = 0  # already in the past: times out at once
            events = await collect(stub.Execute(request))
        assert events[-1].error.code == "TIMED_OUT" and "deadline" in events[-1].error.message

    run(body())


def test_health_and_reflection():
    async def body():
        async with serving(Worker([basic.echo, basic.sleep])) as stub:
            channel = stub.channel
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", "echo", "sleep"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name async for r in replies for s in r.list_services_response.service}
            assert {"workmesh.v1.Worker", "grpc.health.v1.Health"} <= names

    run(body())


def test_drain_finishes_running_jobs_and_rejects_new_ones():
    async def body():
        gate = new_gate("drain")
        worker = Worker([gated])
        async with serving(worker) as stub:
            health = health_pb2_grpc.HealthStub(stub.channel)
            running = stub.Execute(execute_request("dr-1", "gated", gate="drain"))
            await first_events(running, 2)
            drain = asyncio.ensure_future(worker.drain(grace=60))

            async def not_serving():
                reply = await health.Check(health_pb2.HealthCheckRequest(service="gated"))
                return reply.status == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually_async(not_serving)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(stub.Execute(execute_request("dr-2", "gated", gate="drain")))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "draining" in info.value.details()
            assert not drain.done()
            gate.set()
            assert kinds(await collect(running))[-1] == "result"
            await drain

    run(body())


def test_drain_cancels_jobs_left_after_the_grace_period():
    async def body():
        new_gate("drain-late")
        worker = Worker([gated])
        async with serving(worker) as stub:
            running = stub.Execute(execute_request("dl-1", "gated", gate="drain-late"))
            await first_events(running, 2)
            await worker.drain(grace=0.1)
            events = await collect(running)
            assert events[-1].error.code == "CANCELLED" and "shutting down" in events[-1].error.message

    run(body())
