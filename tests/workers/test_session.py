"""The worker's Session stream: the same jobs and events as Execute/Attach/Cancel, many per stream.

Each scenario runs both ways against a real in-process worker server: once with one Execute call
per job, once over a raw Session stream, and the event sequences must match.
"""

from __future__ import annotations

import grpc
import pytest

from tests.support import eventually_async, run
from tests.workers.helpers import collect, execute_request, kinds, serving
from workmesh.services.core.limits import message_options
from workmesh.services.core.streams import Outbox
from workmesh.v1 import common_pb2, worker_pb2, worker_pb2_grpc
from workmesh.workers import Context, Param, Result, Worker, workflow
from workmesh.workers.examples.basic import echo, fail, sleep

Command = worker_pb2.SessionCommand


class RawSession:
    """A Session call driven by hand: send commands, gather events per job until each ends."""

    def __init__(self, stub) -> None:
        self.call = stub.Session()
        self.events: dict[str, list[worker_pb2.WorkerEvent]] = {}
        self.errors: dict[str, worker_pb2.SessionError] = {}
        self.replies = 0

    async def send(self, *commands: worker_pb2.SessionCommand) -> None:
        await self.call.write(worker_pb2.SessionRequest(commands=commands))

    async def until_done(self, *job_ids: str) -> None:
        """Read replies until every job in `job_ids` has its terminal event or an error."""

        def pending():
            return [
                j
                for j in job_ids
                if j not in self.errors
                and not (self.events.get(j) and kinds(self.events[j])[-1] in ("result", "error"))
            ]

        while pending():
            reply = await self.call.read()
            assert reply is not grpc.aio.EOF, f"the session ended with {pending()} unfinished"
            self.replies += 1
            for item in reply.events:
                if item.HasField("error"):
                    self.errors[item.job_id] = item.error
                else:
                    self.events.setdefault(item.job_id, []).append(item.event)

    async def until_event(self, job_id: str, kind: str) -> None:
        while kind not in kinds(self.events.get(job_id, [])):
            reply = await self.call.read()
            assert reply is not grpc.aio.EOF
            for item in reply.events:
                self.events.setdefault(item.job_id, []).append(item.event)


def shape(events) -> list[tuple]:
    """What must be equal between the two paths: seq, kind and the payload (not the times)."""
    out = []
    for e in events:
        kind = e.WhichOneof("payload")
        payload = getattr(e, kind)
        if kind == "started":
            payload = payload.instance_id
        elif kind == "error":
            payload = (payload.code, payload.message, payload.retryable)
        elif kind == "result":
            payload = dict(payload.outputs)
        elif kind == "progress":
            payload = (round(payload.fraction, 6), payload.message)
        out.append((e.seq, kind, payload))
    return out


def test_describe_advertises_the_session():
    async def main():
        async with serving(Worker([echo])) as stub:
            assert (await stub.Describe(worker_pb2.DescribeRequest())).session is True

    run(main(), timeout=60)


@pytest.mark.parametrize(
    "workflow_type, params",
    [
        ("echo", {"message": "hi"}),
        ("fail", {"message": "boom"}),
        ("sleep", {"seconds": 0.3, "steps": 3}),  # steps further apart than the progress rate limit
    ],
)
def test_session_events_equal_execute_events(workflow_type, params):
    async def main():
        worker = Worker([echo, fail, sleep], capacity=4)
        async with serving(worker) as stub:
            via_execute = await collect(stub.Execute(execute_request("x-1", workflow_type, **params)))
            session = RawSession(stub)
            await session.send(Command(execute=execute_request("s-1", workflow_type, **params)))
            await session.until_done("s-1")
            session.call.cancel()
        assert kinds(via_execute)[-1] in ("result", "error")
        assert shape(session.events["s-1"]) == shape(via_execute)

    run(main(), timeout=60)


def test_many_jobs_on_one_stream_in_order_per_job_and_batched():
    async def main():
        worker = Worker([echo, sleep], capacity=64)
        async with serving(worker) as stub:
            session = RawSession(stub)
            ids = [f"job-{i}" for i in range(40)]
            commands = [
                Command(execute=execute_request(j, "sleep", seconds=0.02, steps=2))
                if i % 2
                else Command(execute=execute_request(j, "echo", message=j))
                for i, j in enumerate(ids)
            ]
            await session.send(*commands)
            await session.until_done(*ids)
            session.call.cancel()
        for i, job_id in enumerate(ids):
            events = session.events[job_id]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            if i % 2:
                assert kinds(events) == ["started", "progress", "progress", "result"]
            else:
                assert kinds(events) == ["started", "result"]
                assert events[-1].result.outputs["message"] == job_id
        # The 40 commands arrived in one message; their events left in far fewer than 120 messages.
        assert session.replies < 120

    run(main(), timeout=60)


def test_refused_commands_get_an_error_item_and_the_stream_goes_on():
    async def main():
        worker = Worker([echo, sleep], capacity=1)
        async with serving(worker) as stub:
            session = RawSession(stub)
            await session.send(
                Command(execute=execute_request("busy", "sleep", seconds=0.3, steps=1)),
                Command(execute=execute_request("full", "echo")),
                Command(execute=execute_request("nope", "no-such-type")),
                Command(attach=worker_pb2.AttachRequest(job_id="ghost")),
            )
            await session.until_done("full", "nope", "ghost")
            assert session.errors["full"].code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert session.errors["nope"].code == grpc.StatusCode.NOT_FOUND.value[0]
            assert "no-such-type" in session.errors["nope"].message
            assert session.errors["ghost"].code == grpc.StatusCode.NOT_FOUND.value[0]
            await session.until_done("busy")
            assert kinds(session.events["busy"])[-1] == "result"
            # Capacity is free again: the same stream takes the next job.
            await session.send(Command(execute=execute_request("after", "echo", message="ok")))
            await session.until_done("after")
            assert session.events["after"][-1].result.outputs["message"] == "ok"
            session.call.cancel()

    run(main(), timeout=60)


def test_cancel_command_reaches_the_handler_like_cancel_rpc():
    async def main():
        worker = Worker([sleep], capacity=4)
        async with serving(worker) as stub:
            call = stub.Execute(execute_request("x", "sleep", seconds=30, steps=1))
            assert (await call.read()).HasField("started")
            assert (await stub.Cancel(worker_pb2.CancelRequest(job_id="x", reason="stop it"))).found
            via_execute = []
            while (event := await call.read()) is not grpc.aio.EOF:
                via_execute.append(event)
            session = RawSession(stub)
            await session.send(Command(execute=execute_request("s", "sleep", seconds=30, steps=1)))
            await session.until_event("s", "started")
            await session.send(Command(cancel=worker_pb2.CancelRequest(job_id="s", reason="stop it")))
            await session.until_done("s")
            session.call.cancel()
        assert kinds(via_execute) == ["error"]
        assert via_execute[-1].error.code == "CANCELLED" and via_execute[-1].error.message == "stop it"
        assert shape(session.events["s"][1:]) == shape(via_execute)

    run(main(), timeout=60)


def test_idempotent_execute_on_a_session_runs_the_job_once():
    async def main():
        worker = Worker([sleep], capacity=4)
        async with serving(worker) as stub:
            session = RawSession(stub)
            request = execute_request("once", "sleep", seconds=0.1, steps=1)
            await session.send(Command(execute=request))
            await session.until_event("once", "started")
            await session.send(Command(execute=request))  # replaces the follow, replays from seq 1
            await session.until_done("once")
            session.call.cancel()
            events = session.events["once"]
            assert kinds(events).count("result") == 1
            assert worker.running == 0

    run(main(), timeout=60)


@pytest.mark.parametrize("path", ["execute", "session"])
def test_attach_after_the_stream_broke_replays_and_follows_to_the_end(path):
    async def main():
        worker = Worker([sleep], capacity=4)
        async with serving(worker) as stub:
            request = execute_request("j", "sleep", seconds=0.4, steps=4)
            if path == "execute":
                call = stub.Execute(request)
                first = await call.read()
                call.cancel()  # the gateway went away
            else:
                session = RawSession(stub)
                await session.send(Command(execute=request))
                await session.until_event("j", "started")
                first = session.events["j"][0]
                session.call.cancel()  # the whole stream broke
            assert first.HasField("started") and first.seq == 1
            # The job kept running; a new client picks it up after the event it had.
            if path == "execute":
                rest = await collect(stub.Attach(worker_pb2.AttachRequest(job_id="j", after_seq=1)))
            else:
                again = RawSession(stub)
                await again.send(Command(attach=worker_pb2.AttachRequest(job_id="j", after_seq=1)))
                await again.until_done("j")
                rest = again.events["j"]
                again.call.cancel()
        assert [e.seq for e in rest] == list(range(2, len(rest) + 2))
        assert kinds(rest)[-1] == "result" and rest[-1].result.outputs["steps"] == 4

    run(main(), timeout=60)


@pytest.mark.parametrize("path", ["execute", "session"])
def test_a_job_nobody_follows_is_cancelled_after_the_orphan_timeout(path):
    async def main():
        worker = Worker([sleep], capacity=4)
        async with serving(worker, orphan_timeout=0.2) as stub:
            request = execute_request("o", "sleep", seconds=30, steps=1)
            if path == "execute":
                call = stub.Execute(request)
                await call.read()
                call.cancel()
            else:
                session = RawSession(stub)
                await session.send(Command(execute=request))
                await session.until_event("o", "started")
                await session.send(Command(detach="o"))  # the stream stays open, the job is not followed

            async def orphan_cancelled():
                return worker.running == 0

            await eventually_async(orphan_cancelled, timeout=10)
            events = await collect(stub.Attach(worker_pb2.AttachRequest(job_id="o", after_seq=1)))
            if path == "session":
                session.call.cancel()
        assert kinds(events) == ["error"] and events[-1].error.code == "CANCELLED"
        assert "no client attached" in events[-1].error.message

    run(main(), timeout=60)


@workflow(name="big", version="1.0.0", description="Returns `mb` MiB of data.", params=[Param.int("mb", default=1)])
async def big(ctx: Context, mb: int) -> Result:
    return Result(data=b"x" * (mb * 1024 * 1024))


def test_batches_stay_under_the_message_limit_with_large_results():
    async def main():
        worker = Worker([big], capacity=8)
        options = message_options()  # what the gateway's channel accepts, as the worker's server
        async with serving(worker), grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}", options=options) as channel:
            session = RawSession(worker_pb2_grpc.WorkerStub(channel))
            ids = [f"big-{i}" for i in range(4)]
            # 4 x 25 MiB finish in the same turn: together far above the 64 MiB message limit.
            await session.send(*(Command(execute=execute_request(j, "big", mb=25)) for j in ids))
            await session.until_done(*ids)
            session.call.cancel()
        for j in ids:
            assert len(session.events[j][-1].result.data) == 25 * 1024 * 1024
        assert session.replies >= 4  # each large result left in a message of its own

    run(main(), timeout=60)


def test_outbox_batches_by_size_and_sends_a_big_item_alone():
    event = worker_pb2.WorkerEvent(seq=1)
    size = worker_pb2.SessionEvent(job_id="0", event=event).ByteSize()
    outbox = Outbox(worker_pb2.SessionReply, "events", limit=size * 2)
    assert not outbox
    for i in range(5):
        outbox.add(job_id=str(i), event=event)
    big = worker_pb2.WorkerEvent(seq=2, result=common_pb2.JobResult(data=b"x" * 1000))
    outbox.add(job_id="big", event=big)
    outbox.add(job_id="5", event=event)
    messages = []
    while outbox:
        messages.append([item.job_id for item in outbox.take().events])
    assert messages == [["0", "1"], ["2", "3"], ["4"], ["big"], ["5"]]
    outbox.add(job_id="again", event=event)  # a drained outbox starts afresh
    assert [item.job_id for item in outbox.take().events] == ["again"]
