"""RunJobs: many jobs submitted and followed over one stream of a real gateway with real workers."""

from __future__ import annotations

import grpc

from tests.gateway.mesh import Mesh, statuses, value
from tests.support import run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, fail, sleep


def item(ref: str, workflow_type: str, **params) -> g.RunJobsItem:
    return g.RunJobsItem(
        ref=ref, job=g.SubmitJobRequest(workflow_type=workflow_type, params={k: value(v) for k, v in params.items()})
    )


async def run_jobs(mesh: Mesh, *batches: list[g.RunJobsItem]) -> tuple[dict[str, list[g.RunJobsUpdate]], int]:
    """Send the batches (one message each), half-close, read to the end: updates by ref, messages read."""
    call = mesh.stub.RunJobs()
    for batch in batches:
        await call.write(g.RunJobsRequest(jobs=batch))
    await call.done_writing()
    updates: dict[str, list[g.RunJobsUpdate]] = {}
    replies = 0
    while (reply := await call.read()) is not grpc.aio.EOF:
        replies += 1
        for update in reply.updates:
            updates.setdefault(update.ref, []).append(update)
    assert await call.code() == grpc.StatusCode.OK
    return updates, replies


def events_of(updates: list[g.RunJobsUpdate]) -> list[c.JobEvent]:
    return [u.event for u in updates if u.WhichOneof("kind") == "event"]


def test_many_jobs_over_one_stream_each_submitted_then_its_events_in_order():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo, sleep], capacity=64)
            await mesh.wait_instances("echo", 1)
            await mesh.wait_instances("sleep", 1)  # each type registers on its own
            first = [item(f"e{i}", "echo", message=f"m{i}") for i in range(100)]
            second = [item(f"s{i}", "sleep", seconds=0.05, steps=4) for i in range(10)]
            updates, replies = await run_jobs(mesh, first, second)
        assert set(updates) == {f"e{i}" for i in range(100)} | {f"s{i}" for i in range(10)}
        job_ids = set()
        for ref, items in updates.items():
            assert items[0].WhichOneof("kind") == "submitted"
            job = items[0].submitted.job
            assert not items[0].submitted.existing and job.status == c.JOB_STATUS_QUEUED
            job_ids.add(job.job_id)
            assert all(u.job_id == job.job_id for u in items)
            events = events_of(items)
            assert len(events) == len(items) - 1
            # Exactly the events after the submitted snapshot, without gaps, ending at the terminal one.
            assert [e.seq for e in events] == list(range(job.last_seq + 1, job.last_seq + 1 + len(events)))
            assert statuses(events) == [c.JOB_STATUS_DISPATCHED, c.JOB_STATUS_RUNNING, c.JOB_STATUS_SUCCEEDED]
            result = next(e.result for e in events if e.HasField("result"))
            if ref.startswith("e"):
                assert result.outputs["message"] == "m" + ref[1:]
            else:
                fractions = [e.progress.fraction for e in events if e.HasField("progress")]
                assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert len(job_ids) == 110
        # Updates are batched: far fewer messages than the 110 x 4+ updates.
        assert replies < 110 * 4
        for job_id in job_ids:  # the jobs are ordinary jobs of the gateway
            assert (await mesh.store.get(job_id)).status == c.JOB_STATUS_SUCCEEDED

    run(main())


def test_bad_items_get_their_own_error_and_the_others_run():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo, sleep, fail])
            await mesh.wait_instances("echo", 1)
            await mesh.wait_instances("sleep", 1)  # each type registers on its own
            await mesh.wait_instances("fail", 1)
            batch = [
                item("ok-1", "echo", message="a"),
                item("no-type", ""),
                item("unknown", "no-such-type"),
                item("out-of-bounds", "sleep", seconds=-1),
                item("bad-int", "sleep", steps="many"),
                item("unknown-param", "echo", colour="red"),
                item("fails", "fail", message="on purpose"),
                item("ok-2", "echo", message="b"),
            ]
            bad_timeout = g.RunJobsItem(ref="neg-timeout", job=g.SubmitJobRequest(workflow_type="echo"))
            bad_timeout.job.timeout.seconds = -5
            updates, _ = await run_jobs(mesh, batch, [bad_timeout])
        errors = {ref: items[0].error for ref, items in updates.items() if items[0].WhichOneof("kind") == "error"}
        invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert errors["no-type"].code == invalid and "workflow_type" in errors["no-type"].message
        assert errors["unknown"].code == grpc.StatusCode.NOT_FOUND.value[0]
        assert "no-such-type" in errors["unknown"].message and "echo" in errors["unknown"].message
        assert errors["out-of-bounds"].code == invalid and "params.seconds" in errors["out-of-bounds"].message
        assert errors["bad-int"].code == invalid and "params.steps" in errors["bad-int"].message
        assert errors["unknown-param"].code == invalid and "params.colour" in errors["unknown-param"].message
        assert errors["neg-timeout"].code == invalid and "timeout" in errors["neg-timeout"].message
        assert set(errors) == {"no-type", "unknown", "out-of-bounds", "bad-int", "unknown-param", "neg-timeout"}
        for ref in errors:
            assert len(updates[ref]) == 1 and updates[ref][0].job_id == ""
        for ref, message in (("ok-1", "a"), ("ok-2", "b")):
            events = events_of(updates[ref])
            assert statuses(events)[-1] == c.JOB_STATUS_SUCCEEDED
            assert next(e.result for e in events if e.HasField("result")).outputs["message"] == message
        failed = events_of(updates["fails"])
        assert statuses(failed)[-1] == c.JOB_STATUS_FAILED
        assert next(e.error for e in failed if e.HasField("error")).code == "REQUESTED_FAILURE"

    run(main())


def test_idempotency_key_of_a_finished_job_answers_submitted_only():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            first = item("first", "echo", message="x")
            first.job.idempotency_key = "key-1"
            updates, _ = await run_jobs(mesh, [first])
            assert statuses(events_of(updates["first"]))[-1] == c.JOB_STATUS_SUCCEEDED
            again = item("again", "echo", message="x")
            again.job.idempotency_key = "key-1"
            updates2, _ = await run_jobs(mesh, [again])
        assert [u.WhichOneof("kind") for u in updates2["again"]] == ["submitted"]
        submitted = updates2["again"][0].submitted
        assert submitted.existing and submitted.job.job_id == updates["first"][0].job_id
        assert submitted.job.status == c.JOB_STATUS_SUCCEEDED

    run(main())


def test_stream_stays_open_until_half_close_and_serves_later_batches():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            call = mesh.stub.RunJobs()
            for round_ in range(3):  # each job ends before the next is sent; the stream stays up
                await call.write(g.RunJobsRequest(jobs=[item(f"r{round_}", "echo", message=str(round_))]))
                while True:
                    reply = await call.read()
                    assert reply is not grpc.aio.EOF
                    last = reply.updates[-1]
                    if (
                        last.WhichOneof("kind") == "event"
                        and last.event.HasField("status")
                        and last.event.status.status == c.JOB_STATUS_SUCCEEDED
                    ):
                        assert last.ref == f"r{round_}"
                        break
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK

    run(main())


def test_deleting_a_job_ends_its_updates_and_the_stream():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            call = mesh.stub.RunJobs()
            await call.write(g.RunJobsRequest(jobs=[item("long", "sleep", seconds=30, steps=1)]))
            await call.done_writing()
            reply = await call.read()
            job_id = reply.updates[0].submitted.job.job_id
            await mesh.stub.DeleteJob(g.DeleteJobRequest(job_id=job_id))
            updates = list(reply.updates)
            while (reply := await call.read()) is not grpc.aio.EOF:
                updates.extend(reply.updates)
            last = updates[-1]
            assert last.job_id == job_id
            # DeleteJob cancels the running job first: the follower sees CANCELLED, or, when
            # the job vanished before it read that event, a NOT_FOUND item naming the deletion.
            if last.WhichOneof("kind") == "event":
                assert last.event.status.status == c.JOB_STATUS_CANCELLED
            else:
                assert last.error.code == grpc.StatusCode.NOT_FOUND.value[0] and "deleted" in last.error.message
            assert await call.code() == grpc.StatusCode.OK

    run(main())
