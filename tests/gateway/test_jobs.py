"""Jobs through a real gateway to real workers: results, progress, resume, list, cancel,
timeout, delete, handler errors."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.gateway.flows import stubborn
from tests.gateway.mesh import Mesh, statuses, terminal
from tests.support import eventually_async, run
from workmesh.v1 import common_pb2 as c
from workmesh.v1 import gateway_pb2 as g
from workmesh.workers.examples.basic import echo, fail, sleep

S = c


def test_echo_job_succeeds_with_its_result_and_full_lifecycle():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            job = await mesh.submit("echo", message="hello")
            assert job.status == S.JOB_STATUS_QUEUED and job.last_seq == 1
            events = await mesh.follow(job.job_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert statuses(events) == [
                S.JOB_STATUS_QUEUED,
                S.JOB_STATUS_DISPATCHED,
                S.JOB_STATUS_RUNNING,
                S.JOB_STATUS_SUCCEEDED,
            ]
            result = next(e.result for e in events if e.HasField("result"))
            assert result.outputs["message"] == "hello"
            final = await mesh.job(job.job_id)
            assert final.status == S.JOB_STATUS_SUCCEEDED and final.attempts == 1
            assert final.result.outputs["message"] == "hello"
            assert final.instance_id == mesh.workers[0].instance_id
            assert final.HasField("started_at") and final.HasField("finished_at")
            assert final.last_seq == events[-1].seq

    run(main())


def test_defaults_are_filled_and_strings_parsed_before_dispatch():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds="0.01")
            assert job.params["seconds"].float_value == pytest.approx(0.01)
            assert job.params["steps"].int_value == 10  # the declared default
            assert terminal(await mesh.follow(job.job_id)) == S.JOB_STATUS_SUCCEEDED

    run(main())


def test_progress_arrives_in_order_and_watch_resumes_after_seq():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds=0.5, steps=5)
            events = await mesh.follow(job.job_id)
            fractions = [e.progress.fraction for e in events if e.HasField("progress")]
            assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
            assert len(fractions) >= 2
            kinds = [e.WhichOneof("payload") for e in events]
            assert kinds.index("progress") > kinds.index("status") and kinds[-2:] == ["result", "status"]
            # A client that reconnects after seq 3 gets exactly the rest.
            tail = await mesh.follow(job.job_id, after_seq=3)
            assert [e.seq for e in tail] == [e.seq for e in events[3:]]
            # After the terminal event: nothing more, the stream just ends.
            assert await mesh.follow(job.job_id, after_seq=events[-1].seq) == []

    run(main())


def test_list_jobs_newest_first_with_filters_and_pages():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo, fail])
            await mesh.wait_instances("echo", 1)  # each type registers on its own
            await mesh.wait_instances("fail", 1)
            ids = []
            for i in range(5):
                job = await mesh.submit("echo" if i % 2 == 0 else "fail", message=f"m{i}")
                ids.append(job.job_id)
                await mesh.follow(job.job_id)
            reply = await mesh.stub.ListJobs(g.ListJobsRequest())
            assert [j.job_id for j in reply.jobs] == ids[::-1] and reply.next_page_token == ""
            failed = await mesh.stub.ListJobs(g.ListJobsRequest(statuses=[S.JOB_STATUS_FAILED]))
            assert [j.job_id for j in failed.jobs] == [ids[3], ids[1]]
            echoes = await mesh.stub.ListJobs(g.ListJobsRequest(workflow_type="echo"))
            assert [j.job_id for j in echoes.jobs] == [ids[4], ids[2], ids[0]]
            seen, token = [], ""
            while True:
                page = await mesh.stub.ListJobs(g.ListJobsRequest(page_size=2, page_token=token))
                seen += [j.job_id for j in page.jobs]
                token = page.next_page_token
                if not token:
                    break
            assert seen == ids[::-1]

    run(main())


def test_idempotency_key_returns_the_same_job():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([echo])
            await mesh.wait_instances("echo", 1)
            request = g.SubmitJobRequest(workflow_type="echo", idempotency_key="order-17")
            first = await mesh.stub.SubmitJob(request)
            again = await mesh.stub.SubmitJob(request)
            assert not first.existing and again.existing and again.job.job_id == first.job.job_id
            await mesh.follow(first.job.job_id)
            assert len((await mesh.stub.ListJobs(g.ListJobsRequest())).jobs) == 1

    run(main())


def test_handler_error_fails_without_retry():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([fail])
            await mesh.wait_instances("fail", 1)
            job = await mesh.submit("fail", message="bad data")
            events = await mesh.follow(job.job_id)
            assert terminal(events) == S.JOB_STATUS_FAILED
            error = next(e.error for e in events if e.HasField("error"))
            assert error.code == "REQUESTED_FAILURE" and "bad data" in error.message
            final = await mesh.job(job.job_id)
            assert final.attempts == 1 and final.error.code == "REQUESTED_FAILURE"

    run(main())


def test_retryable_handler_error_is_retried_up_to_max_attempts():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([fail])
            await mesh.wait_instances("fail", 1)
            job = await mesh.submit("fail", retryable=True)
            events = await mesh.follow(job.job_id)
            assert terminal(events) == S.JOB_STATUS_FAILED
            assert statuses(events).count(S.JOB_STATUS_DISPATCHED) == 3  # the default budget
            assert (await mesh.job(job.job_id)).attempts == 3

    run(main())


def test_cancel_running_job_reaches_the_handler():
    async def main():
        async with Mesh() as mesh:
            worker = await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds=30.0, steps=300)
            await mesh.wait_status(job.job_id, S.JOB_STATUS_RUNNING)
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id, reason="user changed mind"))
            events = await mesh.follow(job.job_id)
            assert terminal(events) == S.JOB_STATUS_CANCELLED
            assert "user changed mind" in events[-1].status.reason
            await eventually_async(lambda: asyncio.sleep(0, worker.running == 0))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "job_id" in err.value.details() and "CANCELLED" in err.value.details()

    run(main())


def test_cancel_is_forced_after_grace_when_the_handler_ignores_it():
    async def main():
        async with Mesh(cancel_grace=0.3) as mesh:
            await mesh.add_worker([stubborn], cancel_grace=30.0)
            await mesh.wait_instances("stubborn", 1)
            job = await mesh.submit("stubborn", seconds=3.0)
            await mesh.wait_status(job.job_id, S.JOB_STATUS_RUNNING)
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=job.job_id))
            events = await mesh.follow(job.job_id)
            assert terminal(events) == S.JOB_STATUS_CANCELLED
            assert "forced" in events[-1].status.reason

    run(main())


def test_cancel_queued_job_is_immediate():
    async def main():
        async with Mesh() as mesh:
            await mesh.add_worker([sleep], capacity=1)
            await mesh.wait_instances("sleep", 1)
            busy = await mesh.submit("sleep", seconds=30.0, steps=300)
            await mesh.wait_status(busy.job_id, S.JOB_STATUS_RUNNING)
            waiting = await mesh.submit("sleep", seconds=0.1)
            assert (await mesh.job(waiting.job_id)).status == S.JOB_STATUS_QUEUED
            cancelled = await mesh.stub.CancelJob(g.CancelJobRequest(job_id=waiting.job_id))
            assert cancelled.status == S.JOB_STATUS_CANCELLED
            await mesh.stub.CancelJob(g.CancelJobRequest(job_id=busy.job_id))
            assert terminal(await mesh.follow(busy.job_id)) == S.JOB_STATUS_CANCELLED
            # The cancelled queued job never ran.
            assert S.JOB_STATUS_DISPATCHED not in statuses(await mesh.follow(waiting.job_id))

    run(main())


def test_timeout_cancels_on_the_worker_and_ends_timed_out():
    async def main():
        async with Mesh() as mesh:
            worker = await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", timeout=0.3, seconds=30.0, steps=300)
            events = await mesh.follow(job.job_id)
            assert terminal(events) == S.JOB_STATUS_TIMED_OUT
            error = next(e.error for e in events if e.HasField("error"))
            assert error.code == "TIMED_OUT"
            await eventually_async(lambda: asyncio.sleep(0, worker.running == 0))

    run(main())


def test_delete_running_job_cancels_it_first():
    async def main():
        async with Mesh() as mesh:
            worker = await mesh.add_worker([sleep])
            await mesh.wait_instances("sleep", 1)
            job = await mesh.submit("sleep", seconds=30.0, steps=300)
            await mesh.wait_status(job.job_id, S.JOB_STATUS_RUNNING)
            await mesh.stub.DeleteJob(g.DeleteJobRequest(job_id=job.job_id))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mesh.job(job.job_id)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            await eventually_async(lambda: asyncio.sleep(0, worker.running == 0))

    run(main())
